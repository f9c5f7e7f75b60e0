package lualib

import (
	"fmt"
	"math"

	lua "github.com/yuin/gopher-lua"

	"github.com/whenlua/whenlua"
)

// ToLua converts a variable's value to Lua: ints and floats become numbers
// (ints beyond ±2^53 lose precision, as Lua 5.1 numbers are float64),
// strings strings, bools booleans, and an unset value nil.
func ToLua(v whenlua.Value) lua.LValue {
	switch v.T {
	case whenlua.TypeString:
		return lua.LString(v.S)
	case whenlua.TypeInt:
		return lua.LNumber(float64(v.I))
	case whenlua.TypeFloat:
		return lua.LNumber(v.F)
	case whenlua.TypeBool:
		return lua.LBool(v.B)
	}
	return lua.LNil
}

// FromLua converts a Lua value to a variable's value, inferring the type as
// SPEC §5 says: an integral number in int64's range becomes an int, any other
// number a float, a string a string, a boolean a bool, nil unset. Tables,
// functions and the other Lua types are an error.
func FromLua(lv lua.LValue) (whenlua.Value, error) {
	switch x := lv.(type) {
	case *lua.LNilType:
		return whenlua.Nil, nil
	case lua.LBool:
		return whenlua.Bool(bool(x)), nil
	case lua.LString:
		return whenlua.String(string(x)), nil
	case lua.LNumber:
		f := float64(x)
		// 2^63 is the first float past int64; -2^63 is still an int64.
		if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
			return whenlua.Int(int64(f)), nil
		}
		return whenlua.Float(f), nil
	}
	return whenlua.Nil, fmt.Errorf("%w: a %s cannot be stored in a variable (want a number, string, boolean or nil)",
		whenlua.ErrInvalid, lv.Type())
}
