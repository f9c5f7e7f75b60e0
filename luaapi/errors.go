package luaapi

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// LoadError is why a job file did not load: a syntax error, an error raised
// by its top-level code (or a module it required), a bad declaration, or the
// time limit. Line is 0 when the position is unknown or lies in another file
// (the message then names that file:line).
type LoadError struct {
	Path string
	Line int
	Msg  string
	// Requires lists the lib modules the file asked for before it failed,
	// so a caller can retry the load when one of them appears or changes.
	Requires []string
}

// Error formats the error as "path:line: msg", or "path: msg" without a line.
func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// CallError is an error raised by a condition, a pre or post function, or an
// on_load/on_unload hook. Path and Line are where it was raised (a job file
// or a lib module); Timeout tells that the call ran out of time.
type CallError struct {
	Path    string
	Line    int
	Msg     string
	Timeout bool // the call ran past its time limit
	Memory  bool // the call grew the heap past its memory limit
}

// Error formats the error as "path:line: msg", or "path: msg" without a line.
func (e *CallError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// ErrClosed is returned by calls into a File after Close.
var ErrClosed = errors.New("job file state is closed")

var posRE = regexp.MustCompile(`(?s)^(.+?):(\d+): ?(.*)$`)

// splitPos splits "chunk:line: msg" as gopher-lua formats raised errors.
// Chunk names equal to path are recognised first, so a path holding
// ":123: " still splits right.
func splitPos(path, s string) (file string, line int, msg string) {
	if rest, ok := strings.CutPrefix(s, path+":"); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				return path, n, strings.TrimPrefix(rest[i+1:], " ")
			}
		}
	}
	if m := posRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[2])
		return m[1], n, m[3]
	}
	return "", 0, s
}

// errorText is the message of a Lua error, without gopher-lua's traceback.
func errorText(err error) string {
	var api *lua.ApiError
	if errors.As(err, &api) {
		switch o := api.Object.(type) {
		case lua.LString:
			return string(o)
		case nil:
		default:
			if o == lua.LNil {
				return "error(nil) raised"
			}
			return fmt.Sprintf("error object is a %s: %s", o.Type(), o.String())
		}
	}
	return err.Error()
}

// syntaxError converts what parse.Parse and lua.Compile return. An error
// at the end of the input is given lastLine (0: no line), so that a file's
// errors always read file:line: message.
func syntaxError(path string, err error, lastLine int) *LoadError {
	var pe *parse.Error
	var ce *lua.CompileError
	var le *limitError
	switch {
	case errors.As(err, &le):
		return &LoadError{Path: path, Line: le.line, Msg: le.msg}
	case errors.As(err, &pe):
		msg := strings.TrimSpace(pe.Message)
		if pe.Pos.Line == parse.EOF {
			if msg == "syntax error" || msg == "" {
				// What Lua says is expected is not told: most often an end.
				return &LoadError{Path: path, Line: lastLine, Msg: "syntax error at end of file (an end, a bracket or a quote missing?)"}
			}
			return &LoadError{Path: path, Line: lastLine, Msg: "syntax error at end of file: " + msg}
		}
		if pe.Token != "" {
			msg = fmt.Sprintf("syntax error near '%s'", pe.Token)
			if m := strings.TrimSpace(pe.Message); m != "syntax error" && m != "" {
				msg += ": " + m
			}
		} else {
			msg = "syntax error: " + msg
		}
		return &LoadError{Path: path, Line: pe.Pos.Line, Msg: msg}
	case errors.As(err, &ce):
		return &LoadError{Path: path, Line: ce.Line, Msg: ce.Message}
	}
	return &LoadError{Path: path, Msg: err.Error()}
}
