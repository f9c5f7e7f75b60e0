package whenlua

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// resolveWith sets the environment variables of env, name then value, and
// resolves the paths of home.
func resolveWith(t *testing.T, home string, env ...string) Paths {
	t.Helper()
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
	p, err := ResolvePaths(home)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolvePaths(t *testing.T) {
	t.Run("the --home flag puts everything under one directory", func(t *testing.T) {
		p := resolveWith(t, "/h", EnvHome, "/ignored")
		want := Paths{Home: "/h", JobsDir: "/h/jobs", LibDir: "/h/jobs/lib", StateDir: "/h/state", DBDir: "/h/state/db",
			RunsDir: "/h/state/runs", Socket: "/h/whenlua.sock", LogFile: "/h/daemon.log", LockFile: "/h/state/daemon.lock"}
		if p != want {
			t.Errorf("got %+v\nwant %+v", p, want)
		}
	})
	t.Run("WHENLUA_HOME is used without the flag, made absolute", func(t *testing.T) {
		t.Chdir(t.TempDir())
		p := resolveWith(t, "", EnvHome, "rel")
		if !filepath.IsAbs(p.Home) || filepath.Base(p.Home) != "rel" || p.Where() != p.Home {
			t.Errorf("home %q", p.Home)
		}
	})
	t.Run("without either the XDG directories are used", func(t *testing.T) {
		p := resolveWith(t, "", EnvHome, "", "XDG_CONFIG_HOME", "/c", "XDG_STATE_HOME", "/s", "XDG_RUNTIME_DIR", "/r")
		if p.Home != "" || p.JobsDir != "/c/whenlua/jobs" || p.StateDir != "/s/whenlua" || p.Socket != "/r/whenlua.sock" ||
			p.LogFile != "/s/whenlua/daemon.log" || p.Where() != "/s/whenlua" {
			t.Errorf("got %+v", p)
		}
	})
	t.Run("unset or relative XDG variables fall back to the defaults under HOME", func(t *testing.T) {
		p := resolveWith(t, "", EnvHome, "", "HOME", "/home/u", "XDG_CONFIG_HOME", "", "XDG_STATE_HOME", "relative", "XDG_RUNTIME_DIR", "")
		if p.JobsDir != "/home/u/.config/whenlua/jobs" || p.StateDir != "/home/u/.local/state/whenlua" || p.Socket != "/home/u/.local/state/whenlua/whenlua.sock" {
			t.Errorf("got %+v", p)
		}
	})
	t.Run("a home too deep for a unix socket is an error", func(t *testing.T) {
		_, err := ResolvePaths("/" + strings.Repeat("d", 100))
		if err == nil || !strings.Contains(err.Error(), "socket path") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestEnsureCreatesPrivateDirectories(t *testing.T) {
	p, err := ResolvePaths(filepath.Join(t.TempDir(), "h"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{p.Home, p.JobsDir, p.LibDir, p.StateDir, p.DBDir, p.RunsDir} {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want a 0700 directory", d, fi.Mode(), err)
		}
	}
}
