// Package whenlua holds the domain types shared by every part of the scheduler:
// typed variable values, names and their limits, run records, and the
// request/response types spoken over the daemon's socket. It owns no state:
// its values are plain data and its functions are safe on any goroutine.
package whenlua

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Type is the type of a variable's value.
type Type uint8

// The value types. TypeNil is an unset variable.
const (
	TypeNil Type = iota
	TypeString
	TypeInt
	TypeFloat
	TypeBool
)

// Limits on names and values (SPEC §5).
const (
	MaxNameLen  = 256
	MaxValueLen = 64 << 10
)

var typeNames = [...]string{TypeNil: "nil", TypeString: "string", TypeInt: "int", TypeFloat: "float", TypeBool: "bool"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", t)
}

// ParseType parses a --type argument: string, int, float or bool.
func ParseType(s string) (Type, error) {
	switch strings.ToLower(s) {
	case "string", "str":
		return TypeString, nil
	case "int", "integer":
		return TypeInt, nil
	case "float", "number":
		return TypeFloat, nil
	case "bool", "boolean":
		return TypeBool, nil
	}
	return TypeNil, fmt.Errorf("unknown type %q (want string, int, float or bool)", s)
}

// Value is a typed variable value. The zero Value is nil (unset).
type Value struct {
	T Type
	S string
	I int64
	F float64
	B bool
}

// Nil is the unset value.
var Nil = Value{}

// String returns a string value.
func String(s string) Value { return Value{T: TypeString, S: s} }

// Int returns an int value.
func Int(i int64) Value { return Value{T: TypeInt, I: i} }

// Float returns a float value.
func Float(f float64) Value { return Value{T: TypeFloat, F: f} }

// Bool returns a bool value.
func Bool(b bool) Value { return Value{T: TypeBool, B: b} }

// IsNil reports whether v is unset.
func (v Value) IsNil() bool { return v.T == TypeNil }

// String formats v as it appears in a job's environment and in `whenlua get`:
// ints in decimal, floats in the shortest form that parses back, bools as
// true/false, nil as the empty string.
func (v Value) String() string {
	switch v.T {
	case TypeString:
		return v.S
	case TypeInt:
		return strconv.FormatInt(v.I, 10)
	case TypeFloat:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case TypeBool:
		return strconv.FormatBool(v.B)
	}
	return ""
}

// LineString is String for a listing of one value per line (vars,
// history, the REPL's vars()): a string that starts with a double quote,
// is not valid UTF-8, or holds a character that is not graphic (a newline
// or another control character, a line separator, a direction override)
// is double-quoted with backslash escapes, so that a line is one value and
// shows what it holds.
func (v Value) LineString() string {
	if v.T == TypeString && (strings.HasPrefix(v.S, `"`) || !utf8.ValidString(v.S) ||
		strings.ContainsFunc(v.S, func(r rune) bool { return !unicode.IsGraphic(r) })) {
		return strconv.Quote(v.S)
	}
	return v.String()
}

// Equal reports whether v and o have the same type and value. Two NaN floats
// are equal, so a variable that stays NaN does not count as changing.
func (v Value) Equal(o Value) bool {
	if v.T != o.T {
		return false
	}
	switch v.T {
	case TypeString:
		return v.S == o.S
	case TypeInt:
		return v.I == o.I
	case TypeFloat:
		return v.F == o.F || (math.IsNaN(v.F) && math.IsNaN(o.F))
	case TypeBool:
		return v.B == o.B
	}
	return true
}

// Number returns v as a float64 and true when v is an int or a float.
func (v Value) Number() (float64, bool) {
	switch v.T {
	case TypeInt:
		return float64(v.I), true
	case TypeFloat:
		return v.F, true
	}
	return 0, false
}

// ParseValue parses s as a value of type t. TypeNil is not accepted.
func ParseValue(t Type, s string) (Value, error) {
	switch t {
	case TypeString:
		return String(s), nil
	case TypeInt:
		i, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
		if err != nil {
			return Nil, fmt.Errorf("%q is not an int", s)
		}
		return Int(i), nil
	case TypeFloat:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return Nil, fmt.Errorf("%q is not a float", s)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return Nil, fmt.Errorf("%q is not a finite float: NaN and infinities are not stored", s)
		}
		return Float(f), nil
	case TypeBool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "t", "yes", "y", "on", "1":
			return Bool(true), nil
		case "false", "f", "no", "n", "off", "0":
			return Bool(false), nil
		}
		return Nil, fmt.Errorf("%q is not a bool (want true or false; yes/no, on/off and 1/0 work too)", s)
	}
	return Nil, fmt.Errorf("cannot parse a value of type %s", t)
}

// validNameChars reports whether name is [A-Za-z_][A-Za-z0-9_]*; checked
// on every variable a condition reads, so without a regular expression.
func validNameChars(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return name != ""
}

// ErrInvalid marks an error caused by bad input (a name, a value, an
// argument); the client shows it and exits 1, and nothing was changed.
var ErrInvalid = errors.New("invalid")

// ValidateName checks a variable name against SPEC §5.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty variable name", ErrInvalid)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: variable name of %d bytes is longer than %d", ErrInvalid, len(name), MaxNameLen)
	case !validNameChars(name):
		return fmt.Errorf("%w: variable name %q: want letters, digits and _, not starting with a digit", ErrInvalid, name)
	case name == "JOBSERIAL" || name == "JOBNAME":
		return fmt.Errorf("%w: variable name %s is reserved", ErrInvalid, name)
	}
	return nil
}

// ValidateValue checks a value's size against SPEC §5.
func ValidateValue(name string, v Value) error {
	if v.T == TypeString && len(v.S) > MaxValueLen {
		return fmt.Errorf("%w: value of %s is %d bytes, more than %d", ErrInvalid, name, len(v.S), MaxValueLen)
	}
	if v.T == TypeString && strings.IndexByte(v.S, 0) >= 0 {
		return fmt.Errorf("%w: value of %s contains a NUL byte, which a job's environment cannot hold", ErrInvalid, name)
	}
	if v.T == TypeFloat && (math.IsNaN(v.F) || math.IsInf(v.F, 0)) {
		return fmt.Errorf("%w: value of %s is %s: only finite floats are stored", ErrInvalid, name, v)
	}
	if v.T > TypeBool {
		return fmt.Errorf("%w: value of %s has unknown type %d", ErrInvalid, name, v.T)
	}
	return nil
}

// Assignment is one NAME=VALUE of a set; a nil Value unsets NAME.
type Assignment struct {
	Name  string `json:"name"`
	Value Value  `json:"value"`
}

// Validate checks the name and the value.
func (a Assignment) Validate() error {
	if err := ValidateName(a.Name); err != nil {
		return err
	}
	return ValidateValue(a.Name, a.Value)
}

// ApplyAssignments makes the assignments in vars, in order: each sets its
// name, or unsets it for a nil value.
func ApplyAssignments(vars map[string]Value, as []Assignment) {
	for _, a := range as {
		if a.Value.IsNil() {
			delete(vars, a.Name)
		} else {
			vars[a.Name] = a.Value
		}
	}
}

// jsonValue is Value's wire form: {"type":"int","value":5}; nil is
// {"type":"nil"}. A string that is not valid UTF-8, which a JSON string
// cannot hold byte for byte, is {"type":"string","base64":"//5B"}.
type jsonValue struct {
	Type   string          `json:"type"`
	Value  json.RawMessage `json:"value,omitempty"`
	Base64 []byte          `json:"base64,omitempty"`
}

// MarshalJSON encodes v with its type, so 5 and "5" stay distinct, and
// keeps every byte of a string (see jsonValue).
func (v Value) MarshalJSON() ([]byte, error) {
	var raw any
	switch v.T {
	case TypeNil:
		return []byte(`{"type":"nil"}`), nil
	case TypeString:
		if !utf8.ValidString(v.S) {
			return json.Marshal(jsonValue{Type: v.T.String(), Base64: []byte(v.S)})
		}
		raw = v.S
	case TypeInt:
		raw = v.I
	case TypeFloat:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			raw = strconv.FormatFloat(v.F, 'g', -1, 64)
		} else {
			raw = v.F
		}
	case TypeBool:
		raw = v.B
	default:
		return nil, fmt.Errorf("marshal value: unknown type %d", v.T)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return json.Marshal(jsonValue{Type: v.T.String(), Value: b})
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (v *Value) UnmarshalJSON(b []byte) error {
	var j jsonValue
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Type == "nil" || j.Type == "" {
		*v = Nil
		return nil
	}
	t, err := ParseType(j.Type)
	if err != nil {
		return err
	}
	switch t {
	case TypeString:
		if j.Base64 != nil {
			*v = String(string(j.Base64))
			break
		}
		var s string
		err = json.Unmarshal(j.Value, &s)
		*v = String(s)
	case TypeInt:
		var i int64
		err = json.Unmarshal(j.Value, &i)
		*v = Int(i)
	case TypeFloat:
		var f float64
		if err = json.Unmarshal(j.Value, &f); err != nil {
			var s string
			if json.Unmarshal(j.Value, &s) == nil {
				f, err = strconv.ParseFloat(s, 64)
			}
		}
		*v = Float(f)
	case TypeBool:
		var bb bool
		err = json.Unmarshal(j.Value, &bb)
		*v = Bool(bb)
	}
	if err != nil {
		return fmt.Errorf("decode %s value: %w", j.Type, err)
	}
	return nil
}

// AppendBinary appends v's compact storage encoding to b: one type byte and
// the payload (8 bytes for numbers, 1 for bools, the bytes of a string).
func (v Value) AppendBinary(b []byte) []byte {
	b = append(b, byte(v.T))
	switch v.T {
	case TypeString:
		b = append(b, v.S...)
	case TypeInt:
		b = binary.BigEndian.AppendUint64(b, uint64(v.I))
	case TypeFloat:
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(v.F))
	case TypeBool:
		if v.B {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

// DecodeValue decodes a value written by AppendBinary. It copies what it keeps.
func DecodeValue(b []byte) (Value, error) {
	if len(b) == 0 {
		return Nil, errors.New("decode value: empty")
	}
	t, p := Type(b[0]), b[1:]
	switch t {
	case TypeNil:
		return Nil, nil
	case TypeString:
		return String(string(p)), nil
	case TypeInt, TypeFloat:
		if len(p) != 8 {
			return Nil, fmt.Errorf("decode %s value: %d bytes", t, len(p))
		}
		u := binary.BigEndian.Uint64(p)
		if t == TypeInt {
			return Int(int64(u)), nil
		}
		return Float(math.Float64frombits(u)), nil
	case TypeBool:
		if len(p) != 1 {
			return Nil, fmt.Errorf("decode bool value: %d bytes", len(p))
		}
		return Bool(p[0] != 0), nil
	}
	return Nil, fmt.Errorf("decode value: unknown type %d", t)
}
