package luaapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Limits of the Lua source the daemon compiles: job files, lib modules,
// chunks given to load and loadstring, and REPL input. gopher-lua's parser
// keeps its stack on the heap, but its compiler (and the analysis of
// conditions) recurse on the syntax tree, allocate memory for each function
// literal, and take time quadratic in the length of an arithmetic chain; a
// Go stack overflow ends the process. These bounds keep the compile of the
// worst source accepted short and its allocations bounded
// (docs/benchmarks.md has the figures, BenchmarkCompileWorst measures them).
const (
	// MaxSourceLen bounds a job file, a lib module, a chunk given to load
	// or loadstring, a string condition and a REPL chunk.
	MaxSourceLen = 256 << 10
	// MaxNesting bounds the depth of the syntax tree: blocks in blocks,
	// operators in operators (a chain a+b+c counts one level per operator),
	// calls and indexing on calls, nested tables and functions. Lua 5.1
	// itself refuses more than 200 "syntax levels".
	MaxNesting = 200
	// MaxFunctions bounds the function literals of one chunk.
	MaxFunctions = 2000
)

// ReadSource reads a job file or lib module: it opens path without
// blocking (a FIFO is refused, not waited on), refuses anything but a
// regular file (a device such as /dev/zero behind a symbolic link) and a
// file larger than MaxSourceLen without reading it, and reads at most
// MaxSourceLen+1 bytes, so a file that grows meanwhile is refused too.
// Refusals are *LoadError; a file that cannot be opened gives the
// *fs.PathError. It is safe to call from any goroutine.
func ReadSource(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &LoadError{Path: path, Msg: fmt.Sprintf("not a regular file (%s); job files and lib modules are read only from regular files", fileKind(fi.Mode()))}
	}
	if fi.Size() > MaxSourceLen {
		return nil, &LoadError{Path: path, Msg: tooLong(fi.Size(), MaxSourceLen).msg}
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxSourceLen+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if len(src) > MaxSourceLen {
		return nil, &LoadError{Path: path, Msg: tooLong(int64(len(src)), MaxSourceLen).msg}
	}
	return src, nil
}

// tooLong is the refusal of a source of n bytes, over limit.
func tooLong(n int64, limit int) *limitError {
	return &limitError{msg: fmt.Sprintf("source of %d bytes is larger than the limit of %s", n, sizeName(limit))}
}

// sizeName writes a limit in KiB or MiB.
func sizeName(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// A limitError is a chunk refused before it is compiled.
type limitError struct {
	line int
	msg  string
}

func (e *limitError) Error() string { return e.msg }

// errParseStopped is what the reader of a parse panics with when the call
// that parses has run out of time; parse.Parse returns it.
var errParseStopped = errors.New("parse stopped")

// ctxReader hands the parser its source and stops the parse, by panicking
// with errParseStopped (parse.Parse recovers it), once ctx is done. The
// parser reads 4 KiB at a time.
type ctxReader struct {
	ctx context.Context
	r   *bytes.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		panic(errParseStopped)
	}
	return c.r.Read(p)
}

// compileChunk parses and compiles src as the chunk name: it refuses a
// source longer than MaxSourceLen, stops parsing once ctx is done (returning
// context.Cause(ctx)), refuses a tree deeper than MaxNesting or with more
// than MaxFunctions function literals, and rewrites the concatenation
// operator into calls of the bounded concat (see shape). It returns the
// tree too, for the analysis of conditions. Errors are what parse and
// Compile return, a *limitError, or ctx's cause; syntaxError turns them
// into a *LoadError. It uses no shared state: any goroutine may call it.
func compileChunk(ctx context.Context, name string, src []byte) (*lua.FunctionProto, []ast.Stmt, error) {
	if len(src) > MaxSourceLen {
		return nil, nil, tooLong(int64(len(src)), MaxSourceLen)
	}
	chunk, err := parse.Parse(ctxReader{ctx, bytes.NewReader(src)}, name)
	if errors.Is(err, errParseStopped) {
		return nil, nil, context.Cause(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	chunk, err = shape(chunk)
	if err != nil {
		return nil, nil, err
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, nil, err
	}
	trimProto(proto)
	return proto, chunk, nil
}

// concatName is the local (and global) through which a chunk reaches the
// bounded concat. It is not a Lua name, so no code can mention it.
const concatName = "(..)"

// shape checks a parsed chunk against MaxNesting and MaxFunctions and
// replaces each chain of the concatenation operator, a .. b .. c, with a
// call (..)(a, b, c) of the bounded concat: gopher-lua builds a whole chain
// in one instruction, which nothing can interrupt, so t..t..t of a few
// long strings could ask for gigabytes at once. A chunk that concatenates
// starts with `local (..) = (..)`, reading the global the sandbox sets, so
// that functions reach it as an upvalue whatever their environment.
func shape(chunk []ast.Stmt) ([]ast.Stmt, error) {
	w := &shaper{}
	w.stmts(chunk)
	if w.err != nil {
		return nil, w.err
	}
	if w.concat {
		local := &ast.LocalAssignStmt{Names: []string{concatName}, Exprs: []ast.Expr{&ast.IdentExpr{Value: concatName}}}
		chunk = append([]ast.Stmt{local}, chunk...)
	}
	return chunk, nil
}

type shaper struct {
	depth  int
	funcs  int
	concat bool
	err    error
}

// enter counts one level at node; false when the walk must stop.
func (w *shaper) enter(n ast.PositionHolder) bool {
	if w.err != nil {
		return false
	}
	w.depth++
	if w.depth > MaxNesting {
		w.err = &limitError{line: n.Line(), msg: fmt.Sprintf("nesting too deep (limit %d levels of blocks, operators, calls and tables)", MaxNesting)}
		return false
	}
	return true
}

func (w *shaper) leave() { w.depth-- }

func (w *shaper) stmts(ss []ast.Stmt) {
	for _, s := range ss {
		w.stmt(s)
	}
}

func (w *shaper) stmt(s ast.Stmt) {
	if !w.enter(s) {
		return
	}
	defer w.leave()
	switch s := s.(type) {
	case *ast.AssignStmt:
		w.exprs(s.Lhs)
		w.exprs(s.Rhs)
	case *ast.LocalAssignStmt:
		w.exprs(s.Exprs)
	case *ast.FuncCallStmt:
		s.Expr = w.expr(s.Expr)
	case *ast.DoBlockStmt:
		w.stmts(s.Stmts)
	case *ast.WhileStmt:
		s.Condition = w.expr(s.Condition)
		w.stmts(s.Stmts)
	case *ast.RepeatStmt:
		w.stmts(s.Stmts)
		s.Condition = w.expr(s.Condition)
	case *ast.IfStmt:
		s.Condition = w.expr(s.Condition)
		w.stmts(s.Then)
		w.stmts(s.Else)
	case *ast.NumberForStmt:
		s.Init = w.expr(s.Init)
		s.Limit = w.expr(s.Limit)
		s.Step = w.expr(s.Step)
		w.stmts(s.Stmts)
	case *ast.GenericForStmt:
		w.exprs(s.Exprs)
		w.stmts(s.Stmts)
	case *ast.FuncDefStmt:
		if s.Name != nil {
			s.Name.Func = w.expr(s.Name.Func)
			s.Name.Receiver = w.expr(s.Name.Receiver)
		}
		w.function(s.Func)
	case *ast.ReturnStmt:
		w.exprs(s.Exprs)
	}
}

func (w *shaper) exprs(es []ast.Expr) {
	for i, e := range es {
		es[i] = w.expr(e)
	}
}

func (w *shaper) function(f *ast.FunctionExpr) {
	if f == nil {
		return
	}
	w.funcs++
	if w.funcs > MaxFunctions && w.err == nil {
		w.err = &limitError{line: f.Line(), msg: fmt.Sprintf("too many function literals (limit %d in one file or chunk)", MaxFunctions)}
	}
	w.stmts(f.Stmts)
}

// expr walks e and returns it, or the call that replaces it.
func (w *shaper) expr(e ast.Expr) ast.Expr {
	switch e.(type) {
	case nil, *ast.TrueExpr, *ast.FalseExpr, *ast.NilExpr, *ast.NumberExpr, *ast.StringExpr, *ast.Comma3Expr, *ast.IdentExpr:
		return e // leaves
	}
	if !w.enter(e) {
		return e
	}
	defer w.leave()
	switch e := e.(type) {
	case *ast.AttrGetExpr:
		e.Object = w.expr(e.Object)
		e.Key = w.expr(e.Key)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			f.Key = w.expr(f.Key)
			f.Value = w.expr(f.Value)
		}
	case *ast.FuncCallExpr:
		e.Func = w.expr(e.Func)
		e.Receiver = w.expr(e.Receiver)
		w.exprs(e.Args)
	case *ast.FunctionExpr:
		w.function(e)
	case *ast.StringConcatOpExpr:
		// a .. (b .. c): the operands of the right-leaning chain, in order,
		// each one level deeper than the chain.
		var args []ast.Expr
		cur := ast.Expr(e)
		for {
			c, ok := cur.(*ast.StringConcatOpExpr)
			if !ok {
				args = append(args, w.expr(cur))
				break
			}
			args = append(args, w.expr(c.Lhs))
			cur = c.Rhs
		}
		w.concat = true
		call := &ast.FuncCallExpr{Func: &ast.IdentExpr{Value: concatName}, Args: args, AdjustRet: true}
		call.SetLine(e.Line())
		call.SetLastLine(e.LastLine())
		call.Func.SetLine(e.Line())
		call.Func.SetLastLine(e.LastLine())
		return call
	default:
		for _, op := range operands(e) {
			if op != nil {
				*op = w.expr(*op)
			}
		}
	}
	return e
}

// operands gives the places of the operands of an operator expression, left
// to right, so that a walk can read or replace them; the places it does not
// use, and all of them for any other expression, are nil. An array, not a
// slice: the walks call it for every node and it allocates nothing.
func operands(e ast.Expr) [2]*ast.Expr {
	switch e := e.(type) {
	case *ast.LogicalOpExpr:
		return [2]*ast.Expr{&e.Lhs, &e.Rhs}
	case *ast.RelationalOpExpr:
		return [2]*ast.Expr{&e.Lhs, &e.Rhs}
	case *ast.ArithmeticOpExpr:
		return [2]*ast.Expr{&e.Lhs, &e.Rhs}
	case *ast.StringConcatOpExpr:
		return [2]*ast.Expr{&e.Lhs, &e.Rhs}
	case *ast.UnaryMinusOpExpr:
		return [2]*ast.Expr{&e.Expr}
	case *ast.UnaryNotOpExpr:
		return [2]*ast.Expr{&e.Expr}
	case *ast.UnaryLenOpExpr:
		return [2]*ast.Expr{&e.Expr}
	}
	return [2]*ast.Expr{}
}

// concat is the bounded concat that shape makes a chunk call for a .. b ..
// c. It follows Lua 5.1: from the right, a run of strings and numbers is
// joined at once, and where an operand is neither, the __concat metamethod
// of the left operand, else of the right one, joins the pair. A result
// longer than MaxBuildLen is an error raised before anything is built.
func concat(L *lua.LState) int {
	n := L.GetTop()
	if n == 0 {
		return 0
	}
	rhs := L.Get(n)
	for i := n - 1; i >= 1; {
		lhs := L.Get(i)
		if isStringy(lhs) && isStringy(rhs) {
			size := len(lua.LVAsString(rhs))
			j := i
			for ; j >= 1 && isStringy(L.Get(j)); j-- {
				size += stringyLen(L.Get(j))
				if size > MaxBuildLen {
					L.RaiseError("concatenation: a result of more than %d bytes (the limit of one string built at once)", MaxBuildLen)
				}
			}
			var b strings.Builder
			b.Grow(size)
			for k := j + 1; k <= i; k++ {
				b.WriteString(lua.LVAsString(L.Get(k)))
			}
			b.WriteString(lua.LVAsString(rhs))
			rhs = lua.LString(b.String())
			i = j
			continue
		}
		mm := L.GetMetaField(lhs, "__concat")
		if mm == lua.LNil {
			mm = L.GetMetaField(rhs, "__concat")
		}
		if mm.Type() != lua.LTFunction {
			L.RaiseError("cannot perform concat operation between %s and %s", lhs.Type(), rhs.Type())
		}
		L.Push(mm)
		L.Push(lhs)
		L.Push(rhs)
		L.Call(2, 1)
		rhs = L.Get(-1)
		L.Pop(1)
		i--
	}
	L.Push(rhs)
	return 1
}

func isStringy(v lua.LValue) bool {
	switch v.(type) {
	case lua.LString, lua.LNumber:
		return true
	}
	return false
}

// stringyLen is the length of a string, or a bound on a number's.
func stringyLen(v lua.LValue) int {
	if s, ok := v.(lua.LString); ok {
		return len(s)
	}
	return len(v.String())
}
