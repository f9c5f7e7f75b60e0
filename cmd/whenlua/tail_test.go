package main

import (
	"testing"

	"github.com/whenlua/whenlua"
)

func TestRunEndingSaysHowARunFailed(t *testing.T) {
	t.Parallel()
	done := whenlua.RunDone
	for _, tc := range []struct {
		run    whenlua.Run
		want   string
		failed bool
	}{
		{whenlua.Run{State: done}, "", false},
		{whenlua.Run{State: done, Code: 3}, "exit code 3", true},
		{whenlua.Run{State: done, Code: -1, Signal: "killed"}, "signal killed", true},
		{whenlua.Run{State: done, Code: -1, Signal: "terminated", Error: "timed out after 1s"}, "timed out after 1s, signal terminated", true},
		{whenlua.Run{State: done, Code: -1, Signal: "terminated", Error: "cancelled; post: j.lua:3: boom"}, "cancelled, signal terminated, post: j.lua:3: boom", true},
		{whenlua.Run{State: done, Error: "post: j.lua:3: boom"}, "exit code 0, post: j.lua:3: boom", false},
		{whenlua.Run{State: whenlua.RunRefused, Code: -1, Error: "pre refused"}, "refused, pre refused", true},
		{whenlua.Run{State: whenlua.RunRefused, Code: -1, Error: "pre: j.lua:2: post: no"}, "refused, pre: j.lua:2: post: no", true},
		{whenlua.Run{State: whenlua.RunFailed, Code: -1, Error: "fork/exec /bin/nosh: no such file or directory"}, "failed, fork/exec /bin/nosh: no such file or directory", true},
		{whenlua.Run{State: whenlua.RunLost, Code: -1}, "lost", true},
	} {
		if got, failed := runEnding(tc.run); got != tc.want || failed != tc.failed {
			t.Errorf("runEnding(%+v) = %q, %v; want %q, %v", tc.run, got, failed, tc.want, tc.failed)
		}
	}
}
