// Package disktest gives tests a small filesystem to fill, to see how the
// store and the daemon behave when the disk is full (Linux, as root).
package disktest
