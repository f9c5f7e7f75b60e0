package lualib

import (
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// A set from Lua is a request like one from the socket: the limits of one
// set apply to it, and nothing of a refused set reaches the Env.
func TestALuaSetOverTheLimitsOfOneSetIsRefused(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"more than MaxAssignments names",
			`local t = {} for i = 1, 1001 do t["v" .. i] = i end set(t)`,
			"set: invalid: 1001 assignments in one set, more than 1000"},
		{"more than MaxSetBytes of values",
			`local t = {} for i = 1, 5 do t["b" .. i] = string.rep("a", 60000) end whisper(t)`,
			"whisper: invalid: 300010 bytes of names and values in one set, more than 262144"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := &fakeEnv{vars: map[string]whenlua.Value{}}
			L := newLib(t, env)
			err := run(L, c.src)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if len(env.sets) != 0 {
				t.Fatalf("the Env got %d sets", len(env.sets))
			}
		})
	}
	// The largest set allowed goes through.
	env := &fakeEnv{vars: map[string]whenlua.Value{}}
	if err := run(newLib(t, env), `local t = {} for i = 1, 1000 do t["v" .. i] = i end set(t)`); err != nil {
		t.Fatal(err)
	}
	if len(env.sets) != 1 || len(env.sets[0]) != whenlua.MaxAssignments {
		t.Fatalf("sets: %d", len(env.sets))
	}
}
