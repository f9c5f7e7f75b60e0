// Package examples holds realistic job files. The sample one is embedded in
// the whenlua binary and installed on a fresh home; all of them are loaded
// by `whenlua check` in the tests.
package examples

import "embed"

// Files holds every example job file (*.lua).
//
//go:embed *.lua
var Files embed.FS

// Sample is the job file installed as jobs/sample.lua on a fresh home.
//
//go:embed sample.lua
var Sample []byte
