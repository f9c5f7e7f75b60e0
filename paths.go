package whenlua

import (
	"fmt"
	"os"
	"path/filepath"
)

// EnvHome is the environment variable that puts everything under one
// directory (SPEC §2); the --home flag overrides it.
const EnvHome = "WHENLUA_HOME"

// maxSocketPath is the longest path a unix socket address can hold on Linux
// (sun_path is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// Paths are the files and directories of one whenlua home.
type Paths struct {
	// Home is the single directory holding everything when --home or
	// $WHENLUA_HOME is used; empty when the XDG directories are used.
	Home     string
	JobsDir  string // job files: every *.lua directly in it
	LibDir   string // Lua modules job files can require
	StateDir string // the database, run directories, the lock
	DBDir    string // the variable and run store
	RunsDir  string // the temporary directories of running jobs
	Socket   string // the daemon's unix socket
	LogFile  string // where a detached daemon writes its log
	LockFile string // flock'd by the running daemon; holds its pid
}

// ResolvePaths returns the paths for home (the --home flag), else for
// $WHENLUA_HOME, else for the XDG base directories (SPEC §2). Relative
// directories are made absolute. It creates nothing.
func ResolvePaths(home string) (Paths, error) {
	if home == "" {
		home = os.Getenv(EnvHome)
	}
	var p Paths
	if home != "" {
		abs, err := filepath.Abs(home)
		if err != nil {
			return Paths{}, fmt.Errorf("home %s: %w", home, err)
		}
		p = Paths{
			Home:     abs,
			JobsDir:  filepath.Join(abs, "jobs"),
			StateDir: filepath.Join(abs, "state"),
			Socket:   filepath.Join(abs, "whenlua.sock"),
			LogFile:  filepath.Join(abs, "daemon.log"),
		}
	} else {
		config, err := xdgDir("XDG_CONFIG_HOME", ".config")
		if err != nil {
			return Paths{}, err
		}
		state, err := xdgDir("XDG_STATE_HOME", filepath.Join(".local", "state"))
		if err != nil {
			return Paths{}, err
		}
		p = Paths{
			JobsDir:  filepath.Join(config, "whenlua", "jobs"),
			StateDir: filepath.Join(state, "whenlua"),
		}
		p.Socket = filepath.Join(p.StateDir, "whenlua.sock")
		if rt := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rt) {
			p.Socket = filepath.Join(rt, "whenlua.sock")
		}
		p.LogFile = filepath.Join(p.StateDir, "daemon.log")
	}
	p.LibDir = filepath.Join(p.JobsDir, "lib")
	p.DBDir = filepath.Join(p.StateDir, "db")
	p.RunsDir = filepath.Join(p.StateDir, "runs")
	p.LockFile = filepath.Join(p.StateDir, "daemon.lock")
	if len(p.Socket) > maxSocketPath {
		return Paths{}, fmt.Errorf("socket path %s is %d bytes, longer than the %d a unix socket allows: choose a shorter home", p.Socket, len(p.Socket), maxSocketPath)
	}
	return p, nil
}

// xdgDir returns $env when it is an absolute path (the XDG spec says to
// ignore relative ones), else ~/fallback.
func xdgDir(env, fallback string) (string, error) {
	if d := os.Getenv(env); filepath.IsAbs(d) {
		return d, nil
	}
	h, err := os.UserHomeDir()
	if err != nil || h == "" {
		return "", fmt.Errorf("neither $%s nor $HOME is set: set $%s or use --home", env, EnvHome)
	}
	return filepath.Join(h, fallback), nil
}

// Where names the home in messages: Home, or the state directory when the
// XDG directories are used.
func (p Paths) Where() string {
	if p.Home != "" {
		return p.Home
	}
	return p.StateDir
}

// Ensure creates the directories that do not exist yet, mode 0700 (SPEC
// §2). Existing directories keep their mode.
func (p Paths) Ensure() error {
	var dirs []string
	if p.Home != "" {
		dirs = append(dirs, p.Home)
	}
	dirs = append(dirs, p.JobsDir, p.LibDir, p.StateDir, p.DBDir, p.RunsDir, filepath.Dir(p.Socket), filepath.Dir(p.LogFile))
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
	}
	return nil
}
