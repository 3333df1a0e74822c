package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
)

// RotatingWriter appends to a log file and keeps it under a size cap: when a write would take the
// file past the cap, the file moves to <path>.1 (shifting .1 to .2 and so on, dropping the oldest
// beyond the kept number) and a fresh one takes the rest. A component that runs for weeks must not
// fill the disk, and one log file per component keeps `tail -f` simple.
type RotatingWriter struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	maxFiles int
	f        *os.File
	size     int64
	closed   bool
}

// NewRotatingWriter opens (appending to) path. maxBytes <= 0 disables rotation; maxFiles is how
// many rotated files are kept (0: none, the log simply starts over).
func NewRotatingWriter(path string, maxBytes int64, maxFiles int) (*RotatingWriter, error) {
	w := &RotatingWriter{path: path, maxBytes: maxBytes, maxFiles: max(maxFiles, 0)}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *RotatingWriter) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Write writes b. What does not fit under the cap goes to a fresh file, and the cut is made after
// the last whole line that fits, so lines stay whole and readable; only a line longer than the
// cap itself is split. No write takes a file past the cap (a file that was already larger when
// opened, after the cap was lowered, is rotated at the next write).
func (w *RotatingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	written := 0
	for len(b) > 0 {
		if w.f == nil {
			// A failed rotation left no file open; try again rather than give up for good.
			if err := w.open(); err != nil {
				return written, err
			}
		}
		chunk, full := b, false
		if room := max(w.maxBytes-w.size, 0); w.maxBytes > 0 && int64(len(b)) > room {
			full = true
			switch i := bytes.LastIndexByte(b[:room], '\n'); {
			case i >= 0:
				chunk = b[:i+1]
			case w.size > 0:
				chunk = nil // start the line in a fresh file
			default:
				chunk = b[:room]
			}
		}
		n, err := w.f.Write(chunk)
		w.size += int64(n)
		written += n
		b = b[n:]
		if err != nil {
			return written, err
		}
		if full {
			if err := w.rotate(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// rotate shifts <path>.i to <path>.i+1, <path> to <path>.1, and opens a fresh <path>.
func (w *RotatingWriter) rotate() error {
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return err
	}
	if w.maxFiles == 0 {
		if err := removeIfExists(w.path, nil); err != nil {
			return err
		}
	} else {
		if err := removeIfExists(rotated(w.path, w.maxFiles), nil); err != nil {
			return err
		}
		for i := w.maxFiles - 1; i >= 1; i-- {
			if err := os.Rename(rotated(w.path, i), rotated(w.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := os.Rename(w.path, rotated(w.path, 1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return w.open()
}

func rotated(path string, i int) string { return fmt.Sprintf("%s.%d", path, i) }

// Close closes the current file; later writes fail.
func (w *RotatingWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
