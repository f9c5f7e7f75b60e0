package whenlua

import (
	"strconv"
	"strings"
)

// JobNameLess orders job names as due jobs run and listings show them:
// names that end in ".N" (the default names, "<file stem>.<n>") sort by
// their prefix and then by N as a number, so f.2 comes before f.10, as
// whenjobs orders its default names; other names sort as strings. It is a
// strict weak order: names compare as (prefix, number, name) tuples.
func JobNameLess(a, b string) bool {
	pa, na := splitJobNumber(a)
	pb, nb := splitJobNumber(b)
	if pa != pb {
		return pa < pb
	}
	if na != nb {
		return na < nb
	}
	return a < b
}

// CompareJobNames is JobNameLess as a three-way comparison, for
// slices.SortFunc: -1 when a sorts first, 1 when b does, 0 when equal.
func CompareJobNames(a, b string) int {
	switch {
	case JobNameLess(a, b):
		return -1
	case JobNameLess(b, a):
		return 1
	}
	return 0
}

// splitJobNumber splits "prefix.N" into prefix and N; a name without such
// a suffix is its own prefix, with -1.
func splitJobNumber(name string) (string, int64) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return name, -1
	}
	digits := name[i+1:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return name, -1
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return name, -1
	}
	return name[:i], n
}
