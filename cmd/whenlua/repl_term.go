package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/whenlua/whenlua/luaapi"
)

// historyFile is the REPL's history in the state directory, one line an
// entry, mode 0600.
const historyFile = "repl_history"

// historyMax is how many entries are kept.
const historyMax = 1000

// ttyIO is the terminal as x/term's Terminal reads and writes it. A Ctrl-C
// (which raw mode delivers as a byte, not a signal) is turned into Enter
// and remembered, so that ReadLine returns and the line is dropped.
type ttyIO struct {
	in, out     *os.File
	interrupted bool
}

func (t *ttyIO) Read(p []byte) (int, error) {
	n, err := t.in.Read(p)
	for i := range n {
		if p[i] == 3 {
			p[i] = '\r'
			t.interrupted = true
		}
	}
	return n, err
}

func (t *ttyIO) Write(p []byte) (int, error) { return t.out.Write(p) }

// openTTY returns the terminal when stdin and stdout are both terminals.
func openTTY() *ttyIO {
	if !term.IsTerminal(int(os.Stdin.Fd())) || !term.IsTerminal(int(os.Stdout.Fd())) {
		return nil
	}
	return &ttyIO{in: os.Stdin, out: os.Stdout}
}

// termReader reads lines with x/term's line editor.
type termReader struct {
	t   *term.Terminal
	tty *ttyIO
}

func (tr *termReader) readLine(prompt string) (string, error) {
	tr.t.SetPrompt(prompt)
	line, err := tr.t.ReadLine()
	if tr.tty.interrupted {
		tr.tty.interrupted = false
		return "", errInterrupted
	}
	if errors.Is(err, term.ErrPasteIndicator) {
		err = nil
	}
	return line, err
}

// replTTY runs an interactive session: raw mode, line editing, a history
// persisted in the state directory. Output goes through the Terminal, which
// ends lines with CRLF as raw mode needs.
func (e *env) replTTY(ctx context.Context, tty *ttyIO, opts luaapi.ReplOptions, banner string) error {
	fd := int(tty.in.Fd())
	t := term.NewTerminal(tty, "> ")
	if w, h, err := term.GetSize(fd); err == nil {
		_ = t.SetSize(w, h)
	}
	opts.Out = t
	r, err := luaapi.NewRepl(opts)
	if err != nil {
		return err
	}
	defer r.Close()

	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	restore := func() { _ = term.Restore(fd, old) }
	defer restore()
	// A SIGTERM or SIGINT from outside cannot interrupt the blocking read
	// of the terminal: restore it and leave.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			restore()
			os.Exit(130)
		case <-done:
		}
	}()

	hist := &replHistory{skip: func() bool { return tty.interrupted }}
	defer hist.close()
	t.History = hist
	fmt.Fprintf(t, "%s: %d variables. help() lists what you can do; Ctrl-D quits.\n", banner, len(r.Vars()))
	if p, err := e.Paths(); err == nil {
		if err := hist.open(filepath.Join(p.StateDir, historyFile)); err != nil {
			fmt.Fprintf(t, "whenlua: history not kept: %v\n", err)
		}
	}
	replLoop(r, &termReader{t: t, tty: tty}, t)
	fmt.Fprint(t, "\n")
	return nil
}

// replHistory is the Terminal's history, appended to a file as it grows.
// Entries are lines, oldest first.
type replHistory struct {
	entries []string
	f       *os.File
	skip    func() bool // true: drop the entry being added
}

// open loads the history at path and opens it for appending, creating its
// directory (0700) and the file (0600). A file grown to twice historyMax
// entries is rewritten with the newest historyMax.
func (h *replHistory) open(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				h.entries = append(h.entries, line)
			}
		}
		f.Close()
	}
	if len(h.entries) > 2*historyMax {
		h.entries = h.entries[len(h.entries)-historyMax:]
		if err := rewriteHistory(path, h.entries); err != nil {
			return err
		}
	} else if len(h.entries) > historyMax {
		h.entries = h.entries[len(h.entries)-historyMax:]
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	h.f = f
	return nil
}

func rewriteHistory(path string, entries []string) error {
	return installFile(path, []byte(strings.Join(entries, "\n")+"\n"), 0o600)
}

func (h *replHistory) close() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// Add implements term.History: blank lines, repeats of the newest entry
// and interrupted lines are not kept.
func (h *replHistory) Add(entry string) {
	if strings.TrimSpace(entry) == "" || (h.skip != nil && h.skip()) {
		return
	}
	if n := len(h.entries); n > 0 && h.entries[n-1] == entry {
		return
	}
	h.entries = append(h.entries, entry)
	if len(h.entries) > historyMax {
		h.entries = h.entries[len(h.entries)-historyMax:]
	}
	if h.f != nil {
		_, _ = io.WriteString(h.f, entry+"\n")
	}
}

// Len implements term.History.
func (h *replHistory) Len() int { return len(h.entries) }

// At implements term.History: 0 is the newest entry.
func (h *replHistory) At(i int) string { return h.entries[len(h.entries)-1-i] }
