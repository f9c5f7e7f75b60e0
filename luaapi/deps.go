package luaapi

import (
	"fmt"
	"sort"

	"github.com/yuin/gopher-lua/ast"
)

// Static dependency analysis of conditions (DESIGN "dependency index").
//
// A string condition reads every free name except the exempt ones; a
// function condition reads vars.x, vars["x"], get("x"). In both, a helper
// called with a literal name reads that name. What the analysis cannot see
// sets all ("may read anything"): vars used other than with a literal key,
// a helper or get with a computed name, and, in function conditions, a call
// to anything but a library function (a global or local function of the
// file, a method other than a string method, load...). Function literals
// inside a condition are analysed with it, so calling one is fine.
//
// The analysis also tells (byReads) when the only thing it cannot see is
// which names are read: vars[k] or get(k) with a computed k, in a condition
// that calls no helper nor reloaded() and has no input but the values it
// reads (no call it cannot see into, no os or table function, no
// math.random, no assignment to anything but its own locals). Such a
// condition's read set changes only when a value it read changes, so the
// names an evaluation read are its dependencies until then
// (docs/internals.md, "The dependency index").

type condMode int

const (
	stringCond condMode = iota
	funcCond
)

// helperNames are the condition helpers taking a variable name.
var helperNames = map[string]bool{"changes": true, "increases": true, "decreases": true, "prev": true}

// stringExempt are the names a string condition does not read as variables.
var stringExempt = map[string]bool{
	"changes": true, "increases": true, "decreases": true, "prev": true, "reloaded": true,
	"vars": true, "tonumber": true, "tostring": true, "string": true, "math": true,
}

// funcLibrary are the globals a function condition may call without
// hiding what it reads.
var funcLibrary = map[string]bool{
	"changes": true, "increases": true, "decreases": true, "prev": true, "reloaded": true, "get": true,
	"tonumber": true, "tostring": true, "type": true, "select": true, "ipairs": true, "pairs": true,
	"next": true, "unpack": true, "rawget": true, "rawequal": true, "error": true, "assert": true,
	"log": true, "print": true,
}

// libTables are the library tables whose functions a condition may call.
var libTables = map[condMode]map[string]bool{
	stringCond: {"string": true, "math": true},
	funcCond:   {"string": true, "math": true, "table": true, "os": true},
}

// stringMethods are the methods s:m() a function condition may call.
var stringMethods = map[string]bool{
	"byte": true, "find": true, "format": true, "gmatch": true, "gsub": true, "len": true,
	"lower": true, "match": true, "rep": true, "reverse": true, "sub": true, "upper": true,
}

type analyzer struct {
	mode   condMode
	names  map[string]bool
	all    bool
	opaque bool // all for a reason other than a computed name
	impure bool // may change Lua state, or read time or randomness
	// helpers: calls changes, increases, decreases, prev or reloaded,
	// whose results depend on more than the current values.
	helpers bool
	scopes  []map[string]bool
	onFunc  func(*ast.FunctionExpr) // called for every function literal met
	onCall  func(*ast.FuncCallExpr) // called for every call met
	slips   []Warning               // helpers given a bare name (see slip)
}

// Warning is something a job file does that loads but is most likely a
// mistake; `whenlua check` prints it.
type Warning struct {
	Path string
	Line int
	Msg  string
}

// Error formats the warning as "path:line: warning: msg".
func (w Warning) Error() string { return fmt.Sprintf("%s:%d: warning: %s", w.Path, w.Line, w.Msg) }

// slip notes a helper that takes a variable's name given a bare name that
// is not a local: changes(ld) passes the value of ld (in a string
// condition, the variable ld), not the name "ld". The common porting slip
// from whenjobs, where `changes ld` names the variable.
func (a *analyzer) slip(e *ast.FuncCallExpr, fname string) {
	if len(e.Args) == 0 {
		return
	}
	id, ok := e.Args[0].(*ast.IdentExpr)
	if !ok || a.isLocal(id.Value) {
		return
	}
	what := "the global " + id.Value
	if a.mode == stringCond {
		what = "variable " + id.Value
	}
	a.slips = append(a.slips, Warning{Line: e.Line(),
		Msg: fmt.Sprintf("%s(%s) takes the value of %s as the name to look at; to name the variable %s, quote it: %s('%s')",
			fname, id.Value, what, id.Value, fname, id.Value)})
}

// deps returns the sorted names found and whether anything may be read.
func (a *analyzer) deps() ([]string, bool) {
	out := make([]string, 0, len(a.names))
	for n := range a.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, a.all
}

// byReads reports whether the dependencies may be taken from the names
// each evaluation reads (see the comment at the top).
func (a *analyzer) byReads() bool { return a.all && !a.opaque && !a.impure && !a.helpers }

// hidden marks the condition as doing what the analysis cannot see into.
func (a *analyzer) hidden() { a.all, a.opaque = true, true }

// assigned marks an assignment to target: one to anything but a local of
// the condition changes state that outlives the call.
func (a *analyzer) assigned(target ast.Expr) {
	for {
		switch t := target.(type) {
		case *ast.IdentExpr:
			if !a.isLocal(t.Value) {
				a.impure = true
			}
			return
		case *ast.AttrGetExpr:
			target = t.Object
		default:
			a.impure = true
			return
		}
	}
}

func (a *analyzer) read(name string) {
	if a.names == nil {
		a.names = map[string]bool{}
	}
	a.names[name] = true
}

func (a *analyzer) isLocal(name string) bool {
	for i := len(a.scopes) - 1; i >= 0; i-- {
		if a.scopes[i][name] {
			return true
		}
	}
	return false
}

func (a *analyzer) push(names ...string) {
	s := map[string]bool{}
	for _, n := range names {
		s[n] = true
	}
	a.scopes = append(a.scopes, s)
}

func (a *analyzer) declare(names ...string) {
	if len(a.scopes) == 0 {
		a.push()
	}
	for _, n := range names {
		a.scopes[len(a.scopes)-1][n] = true
	}
}

func (a *analyzer) pop() { a.scopes = a.scopes[:len(a.scopes)-1] }

// global reports whether e is the free (non-local) name n.
func (a *analyzer) global(e ast.Expr, n string) bool {
	id, ok := e.(*ast.IdentExpr)
	return ok && id.Value == n && !a.isLocal(n)
}

func (a *analyzer) block(ss []ast.Stmt, names ...string) {
	a.push(names...)
	a.stmts(ss)
	a.pop()
}

func (a *analyzer) stmts(ss []ast.Stmt) {
	for _, s := range ss {
		a.stmt(s)
	}
}

func (a *analyzer) stmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.AssignStmt:
		for _, l := range s.Lhs {
			a.assigned(l)
		}
		a.exprs(s.Lhs)
		a.exprs(s.Rhs)
	case *ast.LocalAssignStmt:
		// local function f: the name is in scope in its own body.
		if len(s.Exprs) == 1 && len(s.Names) == 1 {
			if _, ok := s.Exprs[0].(*ast.FunctionExpr); ok {
				a.declare(s.Names...)
			}
		}
		a.exprs(s.Exprs)
		a.declare(s.Names...)
	case *ast.FuncCallStmt:
		a.expr(s.Expr)
	case *ast.DoBlockStmt:
		a.block(s.Stmts)
	case *ast.WhileStmt:
		a.expr(s.Condition)
		a.block(s.Stmts)
	case *ast.RepeatStmt:
		a.push()
		a.stmts(s.Stmts)
		a.expr(s.Condition)
		a.pop()
	case *ast.IfStmt:
		a.expr(s.Condition)
		a.block(s.Then)
		a.block(s.Else)
	case *ast.NumberForStmt:
		a.expr(s.Init)
		a.expr(s.Limit)
		a.expr(s.Step)
		a.block(s.Stmts, s.Name)
	case *ast.GenericForStmt:
		a.exprs(s.Exprs)
		a.block(s.Stmts, s.Names...)
	case *ast.FuncDefStmt:
		if s.Name != nil {
			a.assigned(s.Name.Func)
			a.expr(s.Name.Func)
			a.expr(s.Name.Receiver)
		}
		a.function(s.Func, s.Name != nil && s.Name.Method != "")
	case *ast.ReturnStmt:
		a.exprs(s.Exprs)
	}
}

func (a *analyzer) exprs(es []ast.Expr) {
	for _, e := range es {
		a.expr(e)
	}
}

func (a *analyzer) function(f *ast.FunctionExpr, method bool) {
	if f == nil {
		return
	}
	if a.onFunc != nil {
		a.onFunc(f)
	}
	var params []string
	if f.ParList != nil {
		params = append(params, f.ParList.Names...)
	}
	if method {
		params = append(params, "self")
	}
	a.block(f.Stmts, params...)
}

func (a *analyzer) expr(e ast.Expr) {
	switch e := e.(type) {
	case nil:
	case *ast.IdentExpr:
		if a.isLocal(e.Value) || e.Value == concatName {
			return
		}
		if e.Value == "vars" {
			a.all = true // vars used other than vars.name
			return
		}
		if a.mode == stringCond && !stringExempt[e.Value] {
			a.read(e.Value)
		}
	case *ast.AttrGetExpr:
		if a.global(e.Object, "vars") {
			if k, ok := e.Key.(*ast.StringExpr); ok {
				a.read(k.Value)
			} else {
				a.all = true
				a.expr(e.Key)
			}
			return
		}
		a.expr(e.Object)
		a.expr(e.Key)
	case *ast.FuncCallExpr:
		a.call(e)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			a.expr(f.Key)
			a.expr(f.Value)
		}
	case *ast.FunctionExpr:
		a.function(e, false)
	default:
		for _, op := range operands(e) {
			if op != nil {
				a.expr(*op)
			}
		}
	}
}

func (a *analyzer) call(e *ast.FuncCallExpr) {
	if a.onCall != nil {
		a.onCall(e)
	}
	a.exprs(e.Args)
	if id, ok := e.Func.(*ast.IdentExpr); ok && id.Value == concatName {
		return // a .. b, which shape made a call
	}
	if e.Receiver != nil { // r:method(...)
		a.expr(e.Receiver)
		if a.mode == funcCond && !stringMethods[e.Method] {
			a.hidden()
		}
		return
	}
	switch f := e.Func.(type) {
	case *ast.IdentExpr:
		name := f.Value
		if a.isLocal(name) {
			if a.mode == funcCond {
				a.hidden()
			}
			return
		}
		if helperNames[name] || name == "reloaded" {
			a.helpers = true
		}
		if helperNames[name] {
			a.slip(e, name)
		}
		if helperNames[name] || (a.mode == funcCond && name == "get") {
			if len(e.Args) > 0 {
				if k, ok := e.Args[0].(*ast.StringExpr); ok {
					a.read(k.Value)
					return
				}
			}
			a.all = true // a computed name
			if name != "get" {
				a.opaque = true // and the helper compares it with a snapshot
			}
			return
		}
		if a.mode == stringCond {
			a.expr(f) // a variable (calling it fails at run time) or an exempt name
			return
		}
		if !funcLibrary[name] {
			a.hidden()
		}
	case *ast.AttrGetExpr:
		if obj, ok := f.Object.(*ast.IdentExpr); ok && libTables[a.mode][obj.Value] && !a.isLocal(obj.Value) {
			if k, ok := f.Key.(*ast.StringExpr); ok {
				if obj.Value == "os" || obj.Value == "table" || obj.Value == "math" && (k.Value == "random" || k.Value == "randomseed") {
					a.impure = true
				}
				return
			}
		}
		a.expr(f)
		if a.mode == funcCond {
			a.hidden()
		}
	case *ast.FunctionExpr:
		a.function(f, false)
	default:
		a.expr(f)
		if a.mode == funcCond {
			a.hidden()
		}
	}
}
