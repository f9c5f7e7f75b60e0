package whenlua

import (
	"slices"
	"testing"
)

func TestJobNameLessOrdersDefaultNamesByNumber(t *testing.T) {
	got := []string{"o.10", "zeta", "o.2", "o.1", "p.1", "o", "alpha", "o.b", "o.11", "o.1a"}
	slices.SortFunc(got, CompareJobNames)
	want := []string{"alpha", "o", "o.1", "o.2", "o.10", "o.11", "o.1a", "o.b", "p.1", "zeta"}
	if !slices.Equal(got, want) {
		t.Fatalf("sorted %v, want %v", got, want)
	}
}
