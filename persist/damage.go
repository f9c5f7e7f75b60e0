package persist

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// DamageError is Open's error for a database it will not open because a
// file of it is damaged or missing: opening it anyway would silently lose
// what the file held (badger drops a table that fails its checksum, and
// deletes every table when the MANIFEST is gone).
type DamageError struct {
	File   string // the damaged or missing file (the directory when badger cannot say)
	Reason string // what is wrong with it
	Dir    string // the database directory
	// Values is set when the damage is values that cannot be read, which
	// Options.Recover drops.
	Values bool
}

func (e *DamageError) Error() string {
	msg := fmt.Sprintf("store damaged: %s: %s; restore %s from a backup, or move it away to start with an empty store",
		e.File, e.Reason, e.Dir)
	if e.Values {
		msg += ", or start the daemon with --recover to drop what cannot be read"
	}
	return msg
}

// openChecked opens badger after checking that every file the database
// needs is there and that every table passes its checksums, then reads
// every value once, which checks the value log's checksums too. A panic of
// badger's at open (a truncated file) becomes an error.
func openChecked(bo badger.Options, f *faults, recover bool, log *slog.Logger) (*badger.DB, error) {
	if err := checkFiles(bo); err != nil {
		return nil, err
	}
	db, err := openBadger(bo)
	if err != nil {
		return nil, err
	}
	err = verifyValues(db, f)
	var de *DamageError
	if recover && errors.As(err, &de) && de.Values {
		err = dropUnreadable(db, f, log)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// dropUnreadable deletes every entry whose value cannot be read, logging
// each (Options.Recover). What can be read stays.
func dropUnreadable(db *badger.DB, f *faults, log *slog.Logger) error {
	var bad [][]byte
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if f.value(it.Item(), func([]byte) error { return nil }) != nil {
				bad = append(bad, it.Item().KeyCopy(nil))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for len(bad) > 0 {
		chunk := bad[:min(len(bad), 1000)]
		bad = bad[len(chunk):]
		txn := db.NewTransaction(true)
		for _, k := range chunk {
			if err := txn.Delete(k); err != nil {
				txn.Discard()
				return err
			}
			log.Warn("store recovery: dropped what could not be read", "what", describeKey(k))
		}
		if err := txn.Commit(); err != nil {
			return err
		}
	}
	return verifyValues(db, f)
}

// faults remembers the value-log file of the last value badger failed to
// read. Badger does not return that failure (a checksum mismatch, a value
// past the end of a truncated file): it logs it, with the value pointer,
// and hands back an empty value.
type faults struct {
	dir string
	mu  sync.Mutex
	fid string // the file id of the last failed read, "" when none
}

var fidRE = regexp.MustCompile(`Fid:(\d+)`)

// saw takes badger's error lines and keeps the file id of a value
// pointer in one (badger names the pointer of a value it failed to read).
func (f *faults) saw(line string) {
	if m := fidRE.FindStringSubmatch(line); m != nil {
		f.mu.Lock()
		f.fid = m[1]
		f.mu.Unlock()
	}
}

// damaged is the error for key's value, which read as empty: every value
// the store writes has at least one byte.
func (f *faults) damaged(key []byte) error {
	f.mu.Lock()
	fid := f.fid
	f.mu.Unlock()
	file := filepath.Join(f.dir, "*.vlog")
	if n, err := strconv.ParseUint(fid, 10, 32); err == nil {
		file = filepath.Join(f.dir, fmt.Sprintf("%06d.vlog", n))
	}
	return &DamageError{File: file, Dir: f.dir, Values: true, Reason: fmt.Sprintf("%s cannot be read (the value log is damaged or cut short)", describeKey(key))}
}

// value is item.Value that refuses a value badger could not read.
func (f *faults) value(item *badger.Item, fn func([]byte) error) error {
	return item.Value(func(b []byte) error {
		if len(b) == 0 {
			return f.damaged(item.Key())
		}
		return fn(b)
	})
}

// openBadger is badger.Open with its panics turned into errors.
func openBadger(bo badger.Options) (db *badger.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &DamageError{File: bo.Dir, Dir: bo.Dir, Reason: "badger cannot open it: " + oneLine(fmt.Sprint(p))}
			bo.Logger.Errorf("badger open panicked: %v\n%s", p, debug.Stack())
		}
	}()
	db, err = badger.Open(bo)
	if err != nil {
		// Badger's errors about its MANIFEST mean a damaged one: the
		// tables it lists are what badger reads the database from.
		msg := err.Error()
		if strings.Contains(msg, "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open store %s: %w", bo.Dir, ErrLocked)
		}
		if bo.ReadOnly && strings.Contains(msg, badger.ErrTruncateNeeded.Error()) { // badger formats its causes with %v
			return nil, fmt.Errorf("open store %s: %w", bo.Dir, ErrNeedsRecovery)
		}
		if strings.Contains(msg, "manifest") || strings.Contains(msg, "MANIFEST") || strings.Contains(msg, "file does not exist for table") {
			return nil, &DamageError{File: filepath.Join(bo.Dir, badger.ManifestFilename), Dir: bo.Dir, Reason: "unreadable (" + oneLine(msg) + ")"}
		}
		return nil, fmt.Errorf("open store %s: %w", bo.Dir, err)
	}
	return db, nil
}

// checkFiles refuses a directory whose MANIFEST is missing while it holds
// badger's data files, one whose MANIFEST cannot be read, and one where a
// table the MANIFEST lists is missing or fails to open or to pass its
// checksums. Tables the MANIFEST does not list are left alone: badger
// writes a table under its final name before recording it, so a crash in
// between leaves a partial one, which badger deletes when it opens.
func checkFiles(bo badger.Options) error {
	dir := bo.Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	var data []string
	manifest := false
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == badger.ManifestFilename:
			manifest = true
		case strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".vlog"), strings.HasSuffix(name, ".mem"):
			data = append(data, name)
		}
	}
	mpath := filepath.Join(dir, badger.ManifestFilename)
	if !manifest {
		if len(data) > 0 {
			return &DamageError{
				File:   mpath,
				Dir:    dir,
				Reason: fmt.Sprintf("missing, while the directory holds %d data files (%s...), which badger would delete", len(data), data[0]),
			}
		}
		return nil
	}
	mf, err := os.Open(mpath)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	m, _, err := badger.ReplayManifestFile(mf, bo.ExternalMagicVersion, bo)
	mf.Close()
	if err != nil {
		return &DamageError{File: mpath, Dir: dir, Reason: "unreadable (" + oneLine(err.Error()) + ")"}
	}
	ids := slices.Sorted(maps.Keys(m.Tables))
	for _, id := range ids {
		path := table.NewFilename(id, dir)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return &DamageError{File: path, Dir: dir, Reason: "missing, while the MANIFEST lists it"}
		}
		if err := checkTable(path, m.Tables[id].Compression, bo.BlockSize); err != nil {
			return &DamageError{File: path, Dir: dir, Reason: err.Error()}
		}
	}
	return nil
}

// checkTable opens one table read-only and verifies its checksums.
func checkTable(path string, comp options.CompressionType, blockSize int) (err error) {
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		return errors.Unwrap(err)
	}
	var t *table.Table
	defer func() {
		if p := recover(); p != nil {
			err = panicReason(p)
		}
		if t != nil {
			t.MmapFile.Close(-1)
		} else if err != nil {
			mf.Close(-1)
		}
	}()
	t, err = table.OpenTable(mf, table.Options{
		ReadOnly:    true,
		ChkMode:     options.OnTableRead,
		Compression: comp,
		BlockSize:   blockSize,
	})
	if err != nil {
		if strings.Contains(err.Error(), "checksum") {
			return errors.New("a block fails its checksum")
		}
		return fmt.Errorf("unreadable (%s)", oneLine(err.Error()))
	}
	return nil
}

// panicReason says what a panic of badger's while reading a table means.
func panicReason(p any) error {
	if _, ok := p.(runtime.Error); ok {
		return errors.New("a block fails its checksum, or the file is cut short")
	}
	return errors.New("cut short or damaged: badger cannot read its index")
}

// oneLine joins the lines of a message badger spread over several.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// verifyValues reads every key's value once: a value in the value log is
// checked against its checksum, and one that is missing (a truncated value
// log) fails to read.
func verifyValues(db *badger.DB, f *faults) error {
	return db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := f.value(it.Item(), func([]byte) error { return nil }); err != nil {
				return err
			}
		}
		return nil
	})
}
