package luaapi

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// go test -run '^$' -bench . -benchmem ./luaapi/

func BenchmarkEvalStringCond(b *testing.B) {
	h := newFakeHost(map[string]whenlua.Value{"free": whenlua.Int(500), "load": whenlua.Float(7.5)})
	f := mustLoad(b, `when("free < 1000 and load >= 6 and changes('free')", "true", {name = "j"})`, h)
	j := f.Jobs[0]
	in := EvalInput{Evaluated: true, Prev: map[string]whenlua.Value{"free": whenlua.Int(600)}}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := j.Eval(in); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkEvalFuncCond(b *testing.B) {
	h := newFakeHost(map[string]whenlua.Value{"free": whenlua.Int(500)})
	f := mustLoad(b, `when(function() return vars.free < 1000 end, "true", {name = "j"})`, h)
	j := f.Jobs[0]
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := j.Eval(EvalInput{}); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkLoad compares compiling the 80-line testdata/lua/bench.lua with
// running an already compiled proto in a fresh state (what a reload costs
// after the compile, which may happen off the engine's goroutine).
func BenchmarkLoad(b *testing.B) {
	path := filepath.Join(fixtures, "bench.lua")
	src := readFile(b, path)
	b.Run("compile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Compile(path, src); err != nil {
				b.Fatal(err)
			}
		}
	})
	proto, err := Compile(path, src)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("load from proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := Load(path, src, proto, Options{Host: newFakeHost(nil)})
			if err != nil {
				b.Fatal(err)
			}
			if len(f.Jobs) != 42 {
				b.Fatalf("%d jobs", len(f.Jobs))
			}
			f.Close()
		}
	})
}

// BenchmarkCompileWorst compiles a source of the largest size allowed in
// the shapes that cost the compiler most, each within the limits: chains
// and nestings of MaxNesting levels, and MaxFunctions function literals.
func BenchmarkCompileWorst(b *testing.B) {
	fill := func(line string, size int) []byte {
		return []byte(strings.Repeat(line+"\n", size/(len(line)+1)))
	}
	depth := MaxNesting - 2
	shapes := []struct {
		name string
		src  []byte
	}{
		{"arithmetic chains", fill("x = x"+strings.Repeat("+x", depth), MaxSourceLen)},
		{"unary minus", fill("x = "+strings.Repeat("- ", depth)+"x", MaxSourceLen)},
		{"calls on calls", fill("x = f"+strings.Repeat("()", depth), MaxSourceLen)},
		{"elseif chains", fill("if x then"+strings.Repeat(" elseif x then", depth-1)+" end", MaxSourceLen)},
		{"functions", []byte(strings.Repeat("x = function() return 1 end\n", MaxFunctions) +
			strings.Repeat("x = 1\n", (MaxSourceLen-MaxFunctions*28)/6))},
		{"string conditions", fill(`when("x + x + x + x + x + x + x + x > 1", "")`, MaxSourceLen)},
	}
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(sh.src)))
			for b.Loop() {
				if _, err := Compile("worst.lua", sh.src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
