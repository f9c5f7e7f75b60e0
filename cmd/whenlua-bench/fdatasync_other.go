//go:build !linux

package main

import "os"

// fdatasync syncs f: where the system has no fdatasync, a full fsync.
func fdatasync(f *os.File) error { return f.Sync() }
