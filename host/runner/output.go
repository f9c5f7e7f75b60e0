package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// marker is the line that stands for n bytes of output that were not kept.
func marker(n int64) []byte {
	return fmt.Appendf(nil, "\n[... %d bytes omitted ...]\n", n)
}

// output is the capped record of one run's output, seen as a stream of
// logical offsets [0, total). Bytes [0, headLen) are in the file as they
// come; past headCap only a ring of the last tailCap bytes is kept in memory.
// When the stream ends, finish appends a marker and the ring to the file.
//
// One goroutine writes (the run's pipe reader, then the watcher calling
// finish); any number of goroutines follow it. Fields under mu are shared.
type output struct {
	file    *os.File // output.txt, open for reading and writing until close
	headCap int64
	tailCap int64
	log     *slog.Logger

	fileErr error // first error writing the file; only the writer touches it

	mu     sync.Mutex
	total  int64 // bytes the job wrote so far
	ring   []byte
	closed bool          // the stream has ended: total is final
	wake   chan struct{} // closed and cleared on every change; nil when nobody waits

	followers int  // follow calls reading the file
	released  bool // close was called: the last follower closes the file
}

func newOutput(file *os.File, headCap, tailCap int, log *slog.Logger) *output {
	return &output{file: file, headCap: int64(headCap), tailCap: int64(tailCap), log: log}
}

// layout returns, for a stream of total bytes, how much of its head is in
// the file and where the ring's contents start. The ring holds
// [ringStart, total); there is a gap iff ringStart > headLen.
func (o *output) layout(total int64) (headLen, ringStart int64) {
	headLen = min(total, o.headCap)
	ringStart = total
	if total > o.headCap {
		ringStart = max(o.headCap, total-o.tailCap)
	}
	return headLen, ringStart
}

// write appends b to the stream. Called only from the writer goroutine.
func (o *output) write(b []byte) {
	o.mu.Lock()
	total := o.total
	o.mu.Unlock()
	if total < o.headCap {
		k := min(int64(len(b)), o.headCap-total)
		o.writeFile(b[:k])
		o.mu.Lock()
		o.total += k
		o.mu.Unlock()
		b = b[k:]
	}
	o.mu.Lock()
	if len(b) > 0 {
		o.ringWrite(b)
	}
	o.wakeLocked()
	o.mu.Unlock()
}

func (o *output) writeFile(b []byte) {
	if o.fileErr != nil || len(b) == 0 {
		return
	}
	if _, err := o.file.Write(b); err != nil {
		o.fileErr = err
		o.log.Warn("write run output", "file", o.file.Name(), "err", err)
	}
}

// ringWrite keeps b in the ring. o.mu is held.
func (o *output) ringWrite(b []byte) {
	if o.ring == nil {
		o.ring = make([]byte, o.tailCap)
	}
	if skip := int64(len(b)) - o.tailCap; skip > 0 {
		o.total += skip
		b = b[skip:]
	}
	for len(b) > 0 {
		i := (o.total - o.headCap) % o.tailCap
		n := copy(o.ring[i:], b)
		b = b[n:]
		o.total += int64(n)
	}
}

// ringRead copies the logical bytes [from, from+len(dst)) out of the ring;
// they must lie in [ringStart, total). o.mu is held, or the stream is closed.
func (o *output) ringRead(dst []byte, from int64) {
	for len(dst) > 0 {
		i := (from - o.headCap) % o.tailCap
		n := copy(dst, o.ring[i:])
		dst = dst[n:]
		from += int64(n)
	}
}

func (o *output) wakeLocked() {
	if o.wake != nil {
		close(o.wake)
		o.wake = nil
	}
}

// readRange returns the logical bytes [lo, hi), which must not reach into
// the gap. Only after the stream is closed.
func (o *output) readRange(lo, hi int64) ([]byte, error) {
	headLen, ringStart := o.layout(o.total)
	b := make([]byte, hi-lo)
	var err error
	if lo < headLen {
		_, err = o.file.ReadAt(b[:min(hi, headLen)-lo], lo)
	}
	if from := max(lo, ringStart); from < hi {
		o.ringRead(b[from-lo:], from)
	}
	return b, err
}

// finish ends the stream: it appends the marker and the ring to the file,
// wakes the followers and returns the stored output (at most storedCap
// bytes: the whole output, or its head and tail with a marker between) and
// the total size. Called once, from the writer goroutine, after the last write.
func (o *output) finish(storedCap int) ([]byte, int64) {
	o.mu.Lock()
	o.closed = true
	o.wakeLocked()
	total := o.total
	o.mu.Unlock()

	headLen, ringStart := o.layout(total)
	if ringStart > headLen {
		o.writeFile(marker(ringStart - headLen))
	}
	if ringStart < total {
		// The ring in order: from the oldest byte to the end, then from the start.
		i := (ringStart - o.headCap) % o.tailCap
		j := (total - o.headCap) % o.tailCap
		if i < j {
			o.writeFile(o.ring[i:j])
		} else {
			o.writeFile(o.ring[i:])
			o.writeFile(o.ring[:j])
		}
	}
	return o.stored(int64(storedCap)), total
}

// stored builds the stored output of the closed stream.
func (o *output) stored(storedCap int64) []byte {
	total := o.total
	headLen, ringStart := o.layout(total)
	gap := ringStart > headLen
	if !gap && total <= storedCap {
		b, err := o.readRange(0, total)
		o.readErr(err)
		return b
	}
	// The marker's length for total bounds the one for what is left out.
	budget := max(storedCap-int64(len(marker(total))), 0)
	prefix, suffixStart := total, int64(0)
	if gap {
		prefix, suffixStart = headLen, ringStart
	}
	h := min(budget/2, prefix)
	t := min(budget-h, total-max(h, suffixStart))
	head, err := o.readRange(0, h)
	o.readErr(err)
	tail, _ := o.readRange(total-t, total)
	b := make([]byte, 0, storedCap)
	b = append(b, head...)
	b = append(b, marker(total-h-t)...)
	return append(b, tail...)
}

func (o *output) readErr(err error) {
	if err != nil {
		o.log.Warn("read run output", "file", o.file.Name(), "err", err)
	}
}

// follow writes the stream to w from its start, then as it grows, until it
// ends (nil) or ctx is done (ctx.Err()). Bytes the ring dropped before w
// could take them are replaced by a marker. w is written without holding
// any lock, so a slow w delays only this follower.
func (o *output) follow(ctx context.Context, w io.Writer) error {
	o.mu.Lock()
	if o.released {
		o.mu.Unlock()
		return fmt.Errorf("read run output: %w", os.ErrClosed)
	}
	o.followers++
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.followers--
		if o.followers == 0 && o.released {
			o.file.Close()
		}
	}()
	var pos int64
	buf := make([]byte, 32<<10)
	for {
		o.mu.Lock()
		total, closed := o.total, o.closed
		headLen, ringStart := o.layout(total)
		var chunk []byte
		var next int64 // pos after chunk is written
		switch {
		case pos >= total:
			if closed {
				o.mu.Unlock()
				return nil
			}
			if o.wake == nil {
				o.wake = make(chan struct{})
			}
			wake := o.wake
			o.mu.Unlock()
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		case pos < headLen:
			o.mu.Unlock()
			n, err := o.file.ReadAt(buf[:min(headLen-pos, int64(len(buf)))], pos)
			if n == 0 && err != nil {
				return fmt.Errorf("read run output: %w", err)
			}
			chunk, next = buf[:n], pos+int64(n)
		case pos < ringStart:
			o.mu.Unlock()
			chunk, next = marker(ringStart-pos), ringStart
		default:
			chunk = buf[:min(total-pos, int64(len(buf)))]
			o.ringRead(chunk, pos)
			o.mu.Unlock()
			next = pos + int64(len(chunk))
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		pos = next
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// close releases the file; a follower still reading it keeps it open until
// it is done, so a tail never loses the end of a run that was cleaned up.
func (o *output) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.released {
		return nil
	}
	o.released = true
	if o.followers > 0 {
		return nil
	}
	err := o.file.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
