// Package fsutil owns how kubestrap puts a file on disk: atomically (a reader or a crash sees the
// old content or the new, never half a file) and with exactly the mode asked for, whatever the
// umask. Every package that writes node files does it through a Writer its caller passes in —
// the disk (NewDisk), a dry run that prints what it would write (NewDryRun), or a Recorder that
// can roll back exactly what was written — which makes this the one place that reports each
// write at -v 1 and prints each "[dryrun] Would write file" line.
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kubestrap/kubestrap/internal/logx"
)

// Option adjusts one write.
type Option func(*options)

type options struct {
	log io.Writer
	// What a dry run prints (see ShowContent, Describe) and how Mkdir treats an existing
	// directory (ForceMode).
	showContent bool
	note        string
	forceMode   bool
}

// Log reports the write on w at verbosity 1 ("[v1] wrote <path> (mode 0600, 227 bytes)"); at
// level 0, or when w is not a logx.Logger, nothing is printed. The content is never shown. It is
// for the package functions (WriteFileAtomic, ...); a Writer reports on the log it was made with.
func Log(w io.Writer) Option { return func(o *options) { o.log = w } }

func apply(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// DirMode is the mode of parent directories created on the way (kubeadm's).
const DirMode = 0o755

// WriteFileAtomic replaces path with data: a temporary file in the same directory (rename is atomic
// only within one filesystem) is written, fsynced and renamed over path, and the directory is
// fsynced so the rename itself survives a crash. Missing parent directories are created 0755.
func WriteFileAtomic(path string, data []byte, perm os.FileMode, opts ...Option) error {
	return WriteStreamAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, opts...)
}

// CreateFileExclusive creates path with data unless it already exists, and reports whether it did.
// The content is published with a hard link, which fails when path exists, so a file another
// writer created meanwhile (possibly a key already in use) is never replaced. The parent directory
// must exist. Only a file it created is reported (Log).
func CreateFileExclusive(path string, data []byte, perm os.FileMode, opts ...Option) (created bool, err error) {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data, perm)
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp) // after a link the content lives on under path
	switch err := os.Link(tmp, path); {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return false, nil
	default:
		// Filesystems without hard links: rename is still atomic, only the no-clobber check
		// becomes a separate step.
		if _, serr := os.Lstat(path); serr == nil {
			return false, nil
		}
		if err := os.Rename(tmp, path); err != nil {
			return false, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	syncDir(dir)
	logx.FileWritten(apply(opts).log, path, perm, len(data), false)
	return true, nil
}

// writeTemp writes data to a new hidden temporary file in dir, fsynced, with mode perm set
// explicitly (the umask must neither loosen nor tighten it), and returns its name.
func writeTemp(dir, base string, data []byte, perm os.FileMode) (string, error) {
	return streamTemp(dir, base, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteStreamAtomic replaces path with what fill writes, as WriteFileAtomic does with a byte
// slice, without holding the content in memory (an installed binary is ~200 MB). When fill fails
// (say, the content did not verify) the temporary file is removed and path is left as it was.
func WriteStreamAtomic(path string, perm os.FileMode, fill func(w io.Writer) error, opts ...Option) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	var n int64
	tmp, err := streamTemp(dir, filepath.Base(path), perm, func(f *os.File) error {
		return fill(countingFile{f: f, n: &n})
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	syncDir(dir)
	logx.FileWritten(apply(opts).log, path, perm, int(n), false)
	return nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// countingFile counts what is written to f. It passes io.Copy's ReadFrom on to the file, so that
// a copy from another file is done by the kernel (copy_file_range) rather than through a buffer.
type countingFile struct {
	f *os.File
	n *int64
}

func (c countingFile) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	*c.n += int64(n)
	return n, err
}

func (c countingFile) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.f.ReadFrom(r)
	*c.n += n
	return n, err
}

// streamTemp is writeTemp with the content written by fill.
func streamTemp(dir, base string, perm os.FileMode, fill func(f *os.File) error) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := fill(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// syncDir persists directory entries; failure is not fatal (some filesystems refuse it).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
