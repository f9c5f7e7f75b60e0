package luaapi

import (
	"slices"
	"testing"
)

func TestWarningsNameHelpersGivenABareNameThatIsNotALocal(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		lines     []int // lines warned about
	}{
		{"a bare name in a string condition", `when("changes(ld)", "true")`, []int{1}},
		{"each helper", `when("increases(a) or decreases(b) or prev(c) == 1", "true")`, []int{1, 1, 1}},
		{"a quoted name", `when("changes('ld') and prev('x') == 1", "true")`, nil},
		{"a global in a function condition", "\nwhen(function() return changes(ld) end, 'true')", []int{2}},
		{"a local of the file", "local n = 'x'\nwhen(function() return changes(n) end, 'true')", nil},
		{"a parameter", "when(function() local function f(n) return changes(n) end return f('x') end, 'true')", nil},
		{"a string built at run time", "local v = 'ld'\nwhen('changes(' .. v .. ')', 'true')", []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := CheckSource("w.lua", []byte(tc.src), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var lines []int
			for _, w := range f.Warnings() {
				lines = append(lines, w.Line)
				if w.Path != "w.lua" {
					t.Errorf("warning %v has path %q", w, w.Path)
				}
			}
			if !slices.Equal(lines, tc.lines) {
				t.Fatalf("warnings %v, want lines %v", f.Warnings(), tc.lines)
			}
		})
	}
}

func TestAWarningSaysWhatToWrite(t *testing.T) {
	f, err := CheckSource("w.lua", []byte(`when("changes(ld)", "true")`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ws := f.Warnings()
	want := "w.lua:1: warning: changes(ld) takes the value of variable ld as the name to look at; to name the variable ld, quote it: changes('ld')"
	if len(ws) != 1 || ws[0].Error() != want {
		t.Fatalf("warnings %v, want %q", ws, want)
	}
}
