package whenlua

import (
	"slices"
	"testing"
)

func TestJobNameLessOrdersDefaultNamesByNumber(t *testing.T) {
	got := []string{"o.10", "zeta", "o.2", "o.1", "p.1", "o", "alpha", "o.b", "o.11", "o.1a"}
	slices.SortFunc(got, func(a, b string) int {
		switch {
		case JobNameLess(a, b):
			return -1
		case JobNameLess(b, a):
			return 1
		}
		return 0
	})
	want := []string{"alpha", "o", "o.1", "o.2", "o.10", "o.11", "o.1a", "o.b", "p.1", "zeta"}
	if !slices.Equal(got, want) {
		t.Fatalf("sorted %v, want %v", got, want)
	}
}
