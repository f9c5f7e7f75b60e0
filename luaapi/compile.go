package luaapi

import (
	"bytes"
	"runtime"
	"sync"
	"weak"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Compile parses and compiles a job file (or a lib module). The proto is
// read-only and may be loaded into any number of states, from any goroutine.
// A first line starting with "#" (a shebang) is ignored, as lua does.
// Errors are *LoadError. Compile is safe to call from any goroutine.
func Compile(path string, src []byte) (*lua.FunctionProto, error) {
	chunk, err := parse.Parse(bytes.NewReader(skipShebang(src)), path)
	if err != nil {
		return nil, syntaxError(path, err)
	}
	proto, err := lua.Compile(chunk, path)
	if err != nil {
		return nil, syntaxError(path, err)
	}
	remember(proto, chunk)
	return proto, nil
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

// A fileAST keeps a compiled file's syntax tree for as long as its proto
// lives, so that Load can analyse function conditions without parsing the
// file again. Functions are indexed by their first and last line, as the
// proto of each closure records them.
type fileAST struct {
	chunk []ast.Stmt
	once  sync.Once
	funcs map[[2]int][]*ast.FunctionExpr
}

func (f *fileAST) functions(line, last int) []*ast.FunctionExpr {
	f.once.Do(func() {
		f.funcs = map[[2]int][]*ast.FunctionExpr{}
		a := &analyzer{mode: funcCond, onFunc: func(fe *ast.FunctionExpr) {
			k := [2]int{fe.Line(), fe.LastLine()}
			f.funcs[k] = append(f.funcs[k], fe)
		}}
		a.stmts(f.chunk)
	})
	return f.funcs[[2]int{line, last}]
}

// asts maps a proto (weakly) to its fileAST; an entry goes when its proto is
// collected.
var asts sync.Map // weak.Pointer[lua.FunctionProto] -> *fileAST

func remember(proto *lua.FunctionProto, chunk []ast.Stmt) *fileAST {
	key := weak.Make(proto)
	f := &fileAST{chunk: chunk}
	asts.Store(key, f)
	runtime.AddCleanup(proto, func(k weak.Pointer[lua.FunctionProto]) { asts.Delete(k) }, key)
	return f
}

// astOf returns proto's syntax tree, parsing src again when proto did not
// come from Compile.
func astOf(proto *lua.FunctionProto, src []byte) *fileAST {
	if f, ok := asts.Load(weak.Make(proto)); ok {
		return f.(*fileAST)
	}
	chunk, err := parse.Parse(bytes.NewReader(skipShebang(src)), proto.SourceName)
	if err != nil {
		return &fileAST{}
	}
	return remember(proto, chunk)
}
