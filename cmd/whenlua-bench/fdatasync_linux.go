package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync syncs f's data, and its metadata only where reading the data
// needs it.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
