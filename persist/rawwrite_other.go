//go:build !(linux && (amd64 || arm64))

package persist

// rawWritable: raw record writes are made on Linux (amd64, arm64) only.
func rawWritable(int) bool { return false }
