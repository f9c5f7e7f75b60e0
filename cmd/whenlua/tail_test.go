package main

import (
	"testing"

	"github.com/whenlua/whenlua"
)

func TestRunEndingSaysHowARunFailed(t *testing.T) {
	done := whenlua.RunDone
	for _, tc := range []struct {
		run  whenlua.Run
		want string
	}{
		{whenlua.Run{State: done}, ""},
		{whenlua.Run{State: done, Code: 3}, "exit code 3"},
		{whenlua.Run{State: done, Code: -1, Signal: "killed"}, "signal killed"},
		{whenlua.Run{State: done, Code: -1, Signal: "terminated", Error: "timed out after 1s"}, "timed out after 1s, signal terminated"},
		{whenlua.Run{State: whenlua.RunRefused, Code: -1, Error: "pre returned false"}, "refused, pre returned false"},
		{whenlua.Run{State: whenlua.RunFailed, Code: -1, Error: "fork/exec /bin/nosh: no such file or directory"}, "failed, fork/exec /bin/nosh: no such file or directory"},
		{whenlua.Run{State: whenlua.RunLost, Code: -1}, "lost"},
	} {
		if got := runEnding(tc.run); got != tc.want {
			t.Errorf("runEnding(%+v) = %q, want %q", tc.run, got, tc.want)
		}
	}
}
