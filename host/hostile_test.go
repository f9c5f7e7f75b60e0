package host

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/whenlua/whenlua"
)

// Files that crashed the daemon, crash-looping it on every start, or hung
// its engine: a deep nesting compiled at the top level, a 64 GiB sparse
// job file, /dev/zero and a FIFO as lib modules. Each is now an error in
// status, and the daemon goes on.
func TestHostileFilesAreLoadErrorsAndTheDaemonGoesOn(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/nest.lua", `loadstring("return " .. string.rep("not ", 1000000) .. "true")`+"\n"+
		`assert(loadstring("return f"..string.rep("()",1e4)))`+"\n")
	writeFile(t, p.JobsDir+"/deep.lua", "x = "+strings.Repeat("not ", 50_000)+"true\n")
	writeFile(t, p.JobsDir+"/huge.lua", "")
	if err := os.Truncate(p.JobsDir+"/huge.lua", 64<<30); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.LibDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", p.LibDir+"/zero.lua"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p.LibDir+"/f.lua", 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.JobsDir+"/libs.lua", `require "zero"`+"\n")
	writeFile(t, p.JobsDir+"/fifo.lua", `require "f"`+"\n")
	writeFile(t, p.JobsDir+"/ok.lua", `when("changes('x')", "true", {name = "ok"})`+"\n")
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	for base, want := range map[string]string{
		"nest.lua": "nest.lua:2: <string>:1: nesting too deep (limit 200",
		"deep.lua": "deep.lua:1: nesting too deep (limit 200",
		"huge.lua": "huge.lua: source of 68719476736 bytes is larger than the limit of 256 KiB",
		"libs.lua": "libs.lua:1: error loading module zero: ",
		"fifo.lua": "fifo.lua:1: error loading module f: ",
	} {
		f, _ := te.fileStatusOf(base)
		if !strings.Contains(f.Error, want) || strings.ContainsAny(f.Error, "\n\t") {
			t.Errorf("%s: status error %q, want one line containing %q", base, f.Error, want)
		}
	}
	te.set("x", 1)
	if v := te.get("x"); !v.Equal(whenlua.Int(1)) {
		t.Fatalf("x = %v after the set", v)
	}
	if f, _ := te.fileStatusOf("ok.lua"); f.Error != "" || f.Jobs != 1 {
		t.Fatalf("ok.lua: %+v", f)
	}
}
