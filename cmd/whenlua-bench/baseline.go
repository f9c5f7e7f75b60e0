package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/whenlua/whenlua"
)

// The baselines the durable rows compare with, each a loop of one durable
// write the way another program would do it.

// inPlaceSyncer is the least a durable write costs on a disk: 128 bytes
// written over the start of an existing, preallocated file, then
// fdatasync (the file's size and blocks never change, so the sync has no
// metadata to write).
type inPlaceSyncer struct {
	f   *os.File
	buf []byte
}

func newInPlaceSyncer(dir string) (*inPlaceSyncer, error) {
	f, err := os.CreateTemp(dir, "inplace-*.dat")
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	buf := []byte(strings.Repeat("abcdefghijklmnop", 8))
	// Preallocate 64 KiB with real blocks, and make that durable once.
	if _, err := f.Write([]byte(strings.Repeat(string(buf), 512))); err != nil {
		f.Close()
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("baseline: %w", err)
	}
	return &inPlaceSyncer{f: f, buf: buf}, nil
}

// write overwrites the first 128 bytes and fdatasyncs them.
func (s *inPlaceSyncer) write() error {
	s.buf[0]++
	if _, err := s.f.WriteAt(s.buf, 0); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if err := fdatasync(s.f); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	return nil
}

func (s *inPlaceSyncer) close() error {
	err := s.f.Close()
	os.Remove(s.f.Name())
	return err
}

// whenjobsStore stores variables as whenjobs did: the file of every
// variable (4 KiB here) is written anew to a temporary file, fsynced and
// renamed over the old one.
type whenjobsStore struct {
	path string
	body []byte
}

func newWhenjobsStore(dir string) *whenjobsStore {
	var b strings.Builder
	for i := 0; b.Len() < 4096-32; i++ {
		fmt.Fprintf(&b, "variable_%03d=%016d\n", i, i)
	}
	body := []byte(b.String())
	body = append(body, strings.Repeat("#", 4096-len(body)-1)...)
	body = append(body, '\n')
	return &whenjobsStore{path: filepath.Join(dir, "variables"), body: body}
}

// write stores one new value: rewrite, fsync, rename.
func (w *whenjobsStore) write() error {
	w.body[len("variable_000=")]++
	tmp := w.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if _, err := f.Write(w.body); err != nil {
		f.Close()
		return fmt.Errorf("baseline: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("baseline: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if err := os.Rename(tmp, w.path); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	return nil
}

// baselineDir makes the directory of a home's baseline loops and the
// in-place syncer in it.
func baselineDir(p whenlua.Paths) (string, *inPlaceSyncer, error) {
	dir := filepath.Join(p.Home, "baseline")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", nil, err
	}
	raw, err := newInPlaceSyncer(dir)
	if err != nil {
		return "", nil, err
	}
	return dir, raw, nil
}
