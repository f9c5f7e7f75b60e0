package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenlua/whenlua/luaapi"
)

// luaBlocks returns the ```lua blocks of a markdown text.
func luaBlocks(md string) []string {
	var out []string
	for {
		_, rest, ok := strings.Cut(md, "```lua\n")
		if !ok {
			return out
		}
		block, after, ok := strings.Cut(rest, "\n```\n")
		if !ok {
			return out
		}
		out = append(out, block+"\n")
		md = after
	}
}

// TestEveryLuaExampleOfTheJobFileGuideLoads loads each ```lua block of
// docs/jobs.md as a job file, as `whenlua check` does. A block whose first
// line is "-- jobs/lib/NAME.lua" is a module, installed in jobs/lib first.
// Examples of what not to do are in ```text blocks or comments.
func TestEveryLuaExampleOfTheJobFileGuideLoads(t *testing.T) {
	t.Parallel()
	md, err := os.ReadFile(filepath.Join("..", "..", "docs", "jobs.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := luaBlocks(string(md))
	if len(blocks) < 15 {
		t.Fatalf("docs/jobs.md has %d lua blocks; the extraction is broken", len(blocks))
	}
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	if err := os.MkdirAll(lib, 0o700); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i, b := range blocks {
		first, _, _ := strings.Cut(b, "\n")
		if name, ok := strings.CutPrefix(first, "-- jobs/lib/"); ok {
			if err := os.WriteFile(filepath.Join(lib, strings.TrimSpace(name)), []byte(b), 0o600); err != nil {
				t.Fatal(err)
			}
			continue
		}
		path := filepath.Join(dir, fmt.Sprintf("example%02d.lua", i+1))
		if err := os.WriteFile(path, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	for _, path := range files {
		if err := luaapi.Check(path); err != nil {
			src, _ := os.ReadFile(path)
			t.Errorf("%v\n--- the example ---\n%s", err, src)
		}
	}
}
