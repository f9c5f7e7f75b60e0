package luaapi

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Compile parses and compiles a job file (or a lib module). The proto is
// read-only and may be loaded into any number of states, from any goroutine.
// A first line starting with "#" (a shebang) is ignored, as lua does.
// A source longer than MaxSourceLen, nested deeper than MaxNesting or with
// more than MaxFunctions function literals is refused (source.go).
// Errors are *LoadError. Compile is safe to call from any goroutine: it
// shares no mutable state with other calls or with loaded files.
func Compile(path string, src []byte) (*Compiled, error) {
	if len(src) > MaxSourceLen {
		return nil, syntaxError(path, tooLong(int64(len(src)), MaxSourceLen), 0)
	}
	proto, chunk, err := compileChunk(context.Background(), path, skipShebang(src))
	if err != nil {
		return nil, syntaxError(path, err, lastLine(src))
	}
	return &Compiled{Proto: proto, ast: newFileAST(path, src, chunk)}, nil
}

// Compiled is what Compile makes of a file and Load runs: the main chunk
// and the syntax tree Load reads the conditions' deps from. It is read-only
// and may be passed to any number of Loads, from any goroutine. A Compiled
// without a syntax tree (one built around a proto from elsewhere) is parsed
// again by the Load that needs it.
type Compiled struct {
	Proto *lua.FunctionProto
	ast   *fileAST
}

// lastLine is the number of the last line of src (1 for an empty file).
func lastLine(src []byte) int {
	n := bytes.Count(src, []byte("\n"))
	if len(src) == 0 || src[len(src)-1] != '\n' {
		n++
	}
	return n
}

func skipShebang(src []byte) []byte {
	if len(src) == 0 || src[0] != '#' {
		return src
	}
	if i := bytes.IndexByte(src, '\n'); i >= 0 {
		return src[i:]
	}
	return nil
}

// A fileAST keeps a compiled file's syntax tree, and what Load derives from
// it, for as long as its Compiled lives: the conditions of the when() calls
// written with a literal condition are compiled and analysed once, in
// Compile, so a Load of that Compiled only looks them up. Conditions built
// at run time are analysed on first use and cached here too. A fileAST is
// shared by every Load of its Compiled: mu guards conds.
type fileAST struct {
	path  string
	src   []byte
	funcs map[[2]int][]*ast.FunctionExpr // function literals by first and last line
	slips []Warning                      // helper calls given a bare name, outside strings

	mu    sync.Mutex
	conds map[condKey]*condInfo
}

// condKey names a condition: a string condition by the line of its when()
// call and its text, a function condition by its first and last line.
type condKey struct {
	line, last int
	expr       string
}

// condInfo is what a condition compiles to.
type condInfo struct {
	proto *lua.FunctionProto // string conditions
	text  string             // function conditions: the literal's source
	deps  []string
	all   bool
	// byReads and impure: see analyzer.byReads and analyzer.impure.
	byReads, impure bool
	err             error
	slips           []Warning // string conditions: helpers given a bare name
}

func newFileAST(path string, src []byte, chunk []ast.Stmt) *fileAST {
	f := &fileAST{path: path, src: src, funcs: map[[2]int][]*ast.FunctionExpr{}, conds: map[condKey]*condInfo{}}
	var whens []*ast.FuncCallExpr
	a := &analyzer{mode: funcCond,
		onFunc: func(fe *ast.FunctionExpr) {
			k := [2]int{fe.Line(), fe.LastLine()}
			f.funcs[k] = append(f.funcs[k], fe)
		},
		onCall: func(c *ast.FuncCallExpr) {
			if id, ok := c.Func.(*ast.IdentExpr); ok && id.Value == "when" && len(c.Args) > 0 {
				whens = append(whens, c)
			}
		},
	}
	a.stmts(chunk)
	f.slips = a.slips
	for _, c := range whens {
		switch cond := c.Args[0].(type) {
		case *ast.StringExpr:
			f.stringCond(c.Line(), cond.Value)
		case *ast.FunctionExpr:
			f.funcCond(cond.Line(), cond.LastLine())
		}
	}
	return f
}

// stringCond compiles the string condition expr of the when() call on line.
// The chunk is padded so that its line numbers are the file's.
func (f *fileAST) stringCond(line int, expr string) *condInfo {
	key := condKey{line: line, expr: expr}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ci := f.conds[key]; ci != nil {
		return ci
	}
	ci := compileStringCond(f.path, line, expr)
	f.conds[key] = ci
	return ci
}

func compileStringCond(path string, line int, expr string) *condInfo {
	if len(expr) > MaxSourceLen {
		return &condInfo{err: errors.New(tooLong(int64(len(expr)), MaxSourceLen).msg)}
	}
	src := strings.Repeat("\n", max(line-1, 0)) + "return " + expr + "\n"
	chunk, err := parse.Parse(strings.NewReader(src), path)
	if err != nil {
		return &condInfo{err: errors.New(syntaxError(path, err, 0).Msg)}
	}
	ret, ok := chunk[0].(*ast.ReturnStmt)
	if len(chunk) != 1 || !ok || len(ret.Exprs) != 1 {
		return &condInfo{err: errors.New("want exactly one expression")}
	}
	if chunk, err = shape(chunk); err != nil {
		return &condInfo{err: errors.New(syntaxError(path, err, 0).Msg)}
	}
	proto, err := lua.Compile(chunk, path)
	if err != nil {
		return &condInfo{err: errors.New(syntaxError(path, err, 0).Msg)}
	}
	trimProto(proto)
	// A main chunk is vararg; in Lua 5.0 compatibility mode gopher-lua then
	// builds an `arg` table on every call. A condition has no use for it.
	proto.IsVarArg &^= lua.VarArgNeedsArg
	a := &analyzer{mode: stringCond}
	a.stmts(chunk)
	ci := &condInfo{proto: proto, slips: a.slips, byReads: a.byReads(), impure: a.impure || a.opaque}
	ci.deps, ci.all = a.deps()
	return ci
}

// funcCond analyses the function literal(s) spanning lines line..last.
// Several literals with the same span are analysed together (a superset).
// None found: the condition may read anything.
func (f *fileAST) funcCond(line, last int) *condInfo {
	key := condKey{line: line, last: last}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ci := f.conds[key]; ci != nil {
		return ci
	}
	ci := &condInfo{text: funcText(f.src, line, last)}
	if fes := f.funcs[[2]int{line, last}]; len(fes) > 0 {
		a := &analyzer{mode: funcCond}
		for _, fe := range fes {
			a.function(fe, false)
		}
		ci.deps, ci.all = a.deps()
		ci.byReads, ci.impure = a.byReads(), a.impure || a.opaque
	} else {
		ci.all, ci.impure = true, true
	}
	f.conds[key] = ci
	return ci
}

// astOf returns c's syntax tree, parsing src again when c has none.
func astOf(c *Compiled, src []byte) *fileAST {
	if c.ast != nil {
		return c.ast
	}
	_, chunk, _ := compileChunk(context.Background(), c.Proto.SourceName, skipShebang(src))
	return newFileAST(c.Proto.SourceName, src, chunk)
}

// trimProto copies the slices of a compiled proto (and of the functions in
// it) down to their length. gopher-lua's compiler leaves them with the
// capacity it grew them to (1,024 instructions and line numbers at least),
// which a daemon holding thousands of conditions would keep for good.
func trimProto(p *lua.FunctionProto) {
	p.Code = slices.Clone(p.Code)
	p.Constants = slices.Clone(p.Constants)
	p.FunctionPrototypes = slices.Clone(p.FunctionPrototypes)
	p.DbgSourcePositions = slices.Clone(p.DbgSourcePositions)
	p.DbgLocals = slices.Clone(p.DbgLocals)
	p.DbgCalls = slices.Clone(p.DbgCalls)
	p.DbgUpvalues = slices.Clone(p.DbgUpvalues)
	for _, c := range p.FunctionPrototypes {
		trimProto(c)
	}
}
