package persist

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// damagedStore fills a store with 234 small variables and 20 values of
// 4 KiB (in the value log), closes it and returns its directory.
func damagedStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: quietLogger, MaintainEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 234 {
		b := &Batch{Vars: []VarChange{{Name: fmt.Sprintf("v%03d", i), Value: whenlua.Int(int64(i)), Origin: "test"}}}
		if i < 20 {
			b.Vars = append(b.Vars, VarChange{Name: fmt.Sprintf("big%02d", i), Value: whenlua.String(strings.Repeat(fmt.Sprint(i%10), 4096)), Origin: "test"})
		}
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func only(t *testing.T, dir, glob string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, glob))
	if len(m) != 1 {
		t.Fatalf("%s: %v, want one file", glob, m)
	}
	return m[0]
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestADamagedStoreIsRefusedNamingTheFile(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the damaged file
	}{
		{"a flipped byte in the middle of a table", func(t *testing.T, dir string) string {
			p := only(t, dir, "*.sst")
			flip(t, p, size(t, p)/3)
			return p
		}},
		{"a table cut in half", func(t *testing.T, dir string) string {
			p := only(t, dir, "*.sst")
			if err := os.Truncate(p, size(t, p)/2); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"a missing table", func(t *testing.T, dir string) string {
			p := only(t, dir, "*.sst")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"a flipped byte in a value in the value log", func(t *testing.T, dir string) string {
			p := only(t, dir, "*.vlog")
			flip(t, p, 40000)
			return p
		}},
		{"a value log cut short", func(t *testing.T, dir string) string {
			p := only(t, dir, "*.vlog")
			if err := os.Truncate(p, 40000); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"a flipped byte in the MANIFEST", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "MANIFEST")
			flip(t, p, size(t, p)/2)
			return p
		}},
		{"a missing MANIFEST", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "MANIFEST")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := damagedStore(t)
			file := c.damage(t, dir)
			tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
			s, err := Open(Options{Dir: dir, Logger: quietLogger, MaintainEvery: -1})
			if err == nil {
				vars, verr := s.Vars()
				s.Close()
				t.Fatalf("the damaged store opened: %d variables, %v", len(vars), verr)
			}
			var de *DamageError
			if !errors.As(err, &de) || de.File != file {
				t.Fatalf("error %v, want a DamageError naming %s", err, file)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "restore") {
				t.Errorf("message %q: want one line saying what to do", msg)
			}
			t.Logf("%v", err)
			// Refusing kept every table: nothing was deleted.
			if after, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(after) != len(tables) {
				t.Errorf("tables %v before the open, %v after", tables, after)
			}
		})
	}
}

// A value that cannot be read after Open (the value log damaged while the
// store is open) is an error, not an empty value.
func TestAValueDamagedAfterOpenIsAnErrorNotAnEmptyValue(t *testing.T) {
	dir := damagedStore(t)
	s := openTest(t, Options{Dir: dir})
	p := filepath.Join(dir, "000001.vlog")
	for off := int64(1000); off < size(t, p); off += 4096 {
		flip(t, p, off) // a byte in each value of 4 KiB
	}
	_, err := s.Vars()
	var de *DamageError
	if !errors.As(err, &de) || de.File != p {
		t.Fatalf("vars: %v, want a DamageError naming %s", err, p)
	}
	if _, err := s.History("big07", 0); !errors.As(err, &de) {
		t.Fatalf("history: %v, want a DamageError", err)
	}
}

// Recover opens a store whose value log is damaged: what can be read
// stays, what cannot is dropped and logged, and the next open is clean.
func TestRecoverDropsWhatCannotBeReadAndKeepsTheRest(t *testing.T) {
	dir := damagedStore(t)
	flip(t, only(t, dir, "*.vlog"), 40000)
	_, err := Open(Options{Dir: dir, Logger: quietLogger, MaintainEvery: -1})
	var de *DamageError
	if !errors.As(err, &de) || !de.Values || !strings.Contains(err.Error(), "--recover") {
		t.Fatalf("open without Recover: %v, want a DamageError offering --recover", err)
	}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := Open(Options{Dir: dir, Logger: log, MaintainEvery: -1, Recover: true})
	if err != nil {
		t.Fatalf("open with Recover: %v", err)
	}
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	small := 0
	for name := range vars {
		if strings.HasPrefix(name, "v") {
			small++
		}
	}
	if small != 234 || len(vars) == 254 {
		t.Errorf("%d small variables (want all 234) and %d in all (want some big ones dropped)", small, len(vars))
	}
	if n := strings.Count(logged.String(), "dropped what could not be read"); n == 0 || !strings.Contains(logged.String(), "variable big") {
		t.Errorf("the log does not say what was dropped:\n%s", logged.String())
	}
	t.Logf("%d variables kept; log:\n%.600s", len(vars), logged.String())
	s.Close()
	s = openTest(t, Options{Dir: dir})
	if _, err := s.Vars(); err != nil {
		t.Fatalf("the next open without Recover: %v", err)
	}
}

// A table the MANIFEST does not list is what a crash leaves while badger
// writes a new one (it records a table in the MANIFEST only once it is
// written): the store opens with everything it held, and badger deletes
// the partial table.
func TestAPartialTableTheManifestDoesNotListIsLeftToBadger(t *testing.T) {
	dir := damagedStore(t)
	orphan := filepath.Join(dir, "000099.sst")
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists already: %v", orphan, err)
	}
	if err := os.WriteFile(orphan, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: dir, Logger: quietLogger, MaintainEvery: -1})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	vars, err := s.Vars()
	if err != nil || len(vars) != 254 {
		t.Fatalf("%d variables (want 254), %v", len(vars), err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial table is still there after the open: %v", err)
	}
}
