package main

import "testing"

func TestTheExitLineOfADaemonThatDiedIsItsErrorNotTheLastStackLine(t *testing.T) {
	t.Parallel()
	cases := []struct{ out, want string }{
		{"time=... level=INFO msg=x\nwhenlua: open store: store damaged: F: R\n", "open store: store damaged: F: R"},
		{"panic: runtime error: index out of range\n\ngoroutine 7 [running]:\nmain.f()\n\t/src/x.go:3 +0x1d\ncreated by main.g in goroutine 1\n\t/src/x.go:9 +0x25\n", "panic: runtime error: index out of range"},
		{"fatal error: stack overflow\n\nruntime stack:\nruntime.throw()\n", "fatal error: stack overflow"},
		{"something else\n", "something else"},
		{"", "no output"},
	}
	for _, c := range cases {
		if got := lastErrorLine(c.out); got != c.want {
			t.Errorf("lastErrorLine(%q) = %q, want %q", c.out, got, c.want)
		}
	}
}
