//go:build !(linux && (amd64 || arm64))

package persist

import "errors"

// aioSyncer is Linux native AIO (aio_linux.go); elsewhere the commit log
// syncs with a plain fdatasync.
type aioSyncer struct{}

func newAIOSyncer() (*aioSyncer, error) { return nil, errors.New("no native AIO on this platform") }

func (a *aioSyncer) sync(fd int) error { return errAIOUnsupported }

func (a *aioSyncer) destroy() {}
