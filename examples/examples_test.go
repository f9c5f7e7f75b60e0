package examples

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/whenlua/whenlua/luaapi"
)

func TestEveryExampleLoads(t *testing.T) {
	names, err := fs.Glob(Files, "*.lua")
	if err != nil || len(names) < 5 {
		t.Fatalf("examples: %v %v", names, err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if err := luaapi.Check(name); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(".", "whenlua.service")); err != nil {
		t.Fatal(err)
	}
}
