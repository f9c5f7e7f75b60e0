package lualib

import (
	"fmt"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func TestNewSilenceAndSilenceOf(t *testing.T) {
	since := time.Unix(1700000000, 0)
	at := since.Add(26 * time.Hour)
	cases := []struct {
		name string
		last time.Time
		want Silence
	}{
		{"no success known gives a nil last_success", time.Time{},
			Silence{JobName: "b", Expect: 93600, LastSuccess: lua.LNil, Since: 1700000000, SilentSince: 1700093600}},
		{"a known success is in Unix seconds", since.Add(-time.Hour / 2),
			Silence{JobName: "b", Expect: 93600, LastSuccess: lua.LNumber(1699998200), Since: 1700000000, SilentSince: 1700093600}},
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NewSilence("b", 26*time.Hour, tc.last, since, at)
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.want) {
				t.Fatalf("NewSilence = %+v\nwant %+v", got, tc.want)
			}
			ud := L.NewUserData()
			ud.Value = got
			if s, ok := SilenceOf(ud); !ok || s.JobName != "b" {
				t.Fatalf("SilenceOf(userdata) = %+v, %v", s, ok)
			}
			if _, ok := ResultOf(ud); ok {
				t.Fatal("a silence is taken for a result")
			}
			msg := string(SilenceMessage("me@x", "", got))
			for _, want := range []string{"To: me@x\n", "Subject: whenlua: job b silent: no successful run for 26h0m0s\n", "Silent since: 2023-11-16T00:13:20Z"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
		})
	}
	if _, ok := SilenceOf(L.NewTable()); ok {
		t.Fatal("a table is taken for a silence")
	}
}
