package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/kubestrap/kubestrap/internal/logx"
)

// Writer is how every package that puts node files on disk does it, so that one value decides
// whether a run writes (NewDisk), only says what it would write (NewDryRun), or also remembers
// what it changed so that it can be undone (NewRecorder). A package never decides that itself:
// it takes a Writer from its caller (a nil one in an options struct means the disk).
type Writer interface {
	// WriteFile replaces path with data atomically, with mode exactly perm; missing parent
	// directories are created 0755.
	WriteFile(path string, data []byte, perm fs.FileMode, opts ...Option) error
	// WriteStream is WriteFile with the content written by fill, for files too large to hold in
	// memory. When fill fails, path is left as it was.
	WriteStream(path string, perm fs.FileMode, fill func(io.Writer) error, opts ...Option) error
	// CreateExclusive creates path with data unless it exists, and reports whether it did; a
	// file another writer created meanwhile is never replaced. The parent directory must exist.
	CreateExclusive(path string, data []byte, perm fs.FileMode, opts ...Option) (created bool, err error)
	// Mkdir creates dir with mode perm and its missing parents 0755. An existing directory keeps
	// its mode (it may be shared with something else) unless ForceMode is given.
	Mkdir(dir string, perm fs.FileMode, opts ...Option) error
	// Symlink makes link point at target, replacing whatever link is without a moment in which
	// it is missing. Missing parent directories are created 0755.
	Symlink(target, link string) error
	// Rename renames oldpath to newpath durably (the directory is synced, so a later rename
	// cannot reach the disk before this one).
	Rename(oldpath, newpath string) error
	// Remove removes a file, symlink or empty directory; one that does not exist is not an error.
	Remove(path string) error
	// DryRun reports whether the writer only prints. Packages ask it for what a dry run does
	// beyond writing (skip generating keys nobody will see, accept a CA the dry run only
	// pretended to create), so the decision has one source and a real write can never happen
	// in a run that believes it is dry.
	DryRun() bool
}

// ShowContent makes a dry run print the file's content (manifests, units, configuration that
// an operator reviews); the default prints only the path, as for keys and certificates.
func ShowContent() Option { return func(o *options) { o.showContent = true } }

// Describe adds a note to a dry run's line: "Would write file <path> (<note>)", e.g. why the
// content is not shown.
func Describe(note string) Option { return func(o *options) { o.note = note } }

// ForceMode makes Mkdir set perm on a directory that already exists too (etcd warns about a data
// dir that others can read).
func ForceMode() Option { return func(o *options) { o.forceMode = true } }

// NewDisk returns the Writer that writes: atomic writes with exact modes, each reported on log at
// -v 1 ("[v1] wrote <path> (mode 0600, 227 bytes)"); a nil log reports nothing.
func NewDisk(log io.Writer) Writer { return disk{log: log} }

// For returns the writer of a command's --dry-run choice: NewDryRun(log) or NewDisk(log). A
// command makes the choice once and passes the writer down.
func For(dryRun bool, log io.Writer) Writer {
	if dryRun {
		return NewDryRun(log)
	}
	return NewDisk(log)
}

// OrDisk returns w, or the disk writer reporting on log when w is nil: the zero value of an
// options struct writes, as it did before writers existed.
func OrDisk(w Writer, log io.Writer) Writer {
	if w != nil {
		return w
	}
	return NewDisk(log)
}

type disk struct{ log io.Writer }

func (d disk) WriteFile(path string, data []byte, perm fs.FileMode, _ ...Option) error {
	return WriteFileAtomic(path, data, perm, Log(d.log))
}

func (d disk) WriteStream(path string, perm fs.FileMode, fill func(io.Writer) error, _ ...Option) error {
	return WriteStreamAtomic(path, perm, fill, Log(d.log))
}

func (d disk) CreateExclusive(path string, data []byte, perm fs.FileMode, _ ...Option) (bool, error) {
	return CreateFileExclusive(path, data, perm, Log(d.log))
}

func (d disk) Mkdir(dir string, perm fs.FileMode, opts ...Option) error {
	if err := os.MkdirAll(filepath.Dir(dir), DirMode); err != nil {
		return fmt.Errorf("creating directory %s: %w", filepath.Dir(dir), err)
	}
	err := os.Mkdir(dir, perm)
	switch {
	case err == nil:
		// Mkdir's mode passes through the umask; the mode asked for is the mode wanted.
		return os.Chmod(dir, perm)
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("creating directory %s: %w", dir, err)
	case apply(opts).forceMode:
		return os.Chmod(dir, perm)
	}
	return nil
}

func (d disk) Symlink(target, link string) error {
	if err := os.MkdirAll(filepath.Dir(link), DirMode); err != nil {
		return fmt.Errorf("creating directory %s: %w", filepath.Dir(link), err)
	}
	// A temporary link renamed over the old one: the link never goes missing in between.
	tmp := fmt.Sprintf("%s.tmp-%d", link, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(link))
	logx.Linked(d.log, link, target)
	return nil
}

func (d disk) Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	syncDir(filepath.Dir(newpath))
	return nil
}

func (d disk) Remove(path string) error {
	err := os.Remove(path)
	switch {
	case err == nil:
		logx.FileRemoved(d.log, path)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return nil
}

func (disk) DryRun() bool { return false }

// NewDryRun returns the Writer of --dry-run: it changes nothing and prints each change it would
// make on log as "[dryrun] Would write file <path>" (see ShowContent and Describe), "[dryrun]
// Would create directory <dir> (mode 0700)", "[dryrun] Would link <link> -> <target>", ...;
// writes are also reported at -v 1 as the disk writer reports them, so -v lists the same files
// with and without --dry-run.
func NewDryRun(log io.Writer) Writer {
	if log == nil {
		log = io.Discard
	}
	return &dryRun{log: log, dirs: map[string]bool{}}
}

type dryRun struct {
	log io.Writer

	mu sync.Mutex
	// dirs are the directories already announced, so that the phases that each need one (four
	// manifests, three files in etc/kubernetes/kubestrap) say it once, as the real run creates
	// it once.
	dirs map[string]bool
}

func (d *dryRun) WriteFile(path string, data []byte, perm fs.FileMode, opts ...Option) error {
	d.wouldWrite(path, data, perm, len(data), apply(opts))
	return nil
}

func (d *dryRun) WriteStream(path string, perm fs.FileMode, fill func(io.Writer) error, opts ...Option) error {
	// Only the size is reported, so the content is counted, not kept.
	var n countWriter
	if err := fill(&n); err != nil {
		return err
	}
	o := apply(opts)
	o.showContent = false
	d.wouldWrite(path, nil, perm, int(n), o)
	return nil
}

func (d *dryRun) CreateExclusive(path string, data []byte, perm fs.FileMode, opts ...Option) (bool, error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	}
	d.wouldWrite(path, data, perm, len(data), apply(opts))
	return true, nil
}

func (d *dryRun) wouldWrite(path string, data []byte, perm fs.FileMode, size int, o options) {
	switch {
	case o.showContent:
		fmt.Fprintf(d.log, "[dryrun] Would write file %s (mode %04o) with content:\n%s", path, perm.Perm(), data)
	case o.note != "":
		fmt.Fprintf(d.log, "[dryrun] Would write file %s (%s)\n", path, o.note)
	default:
		fmt.Fprintf(d.log, "[dryrun] Would write file %s\n", path)
	}
	logx.FileWritten(d.log, path, perm, size, true)
}

func (d *dryRun) Mkdir(dir string, perm fs.FileMode, opts ...Option) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dirs[dir] {
		return nil
	}
	d.dirs[dir] = true
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(d.log, "[dryrun] Would create directory %s (mode %04o)\n", dir, perm.Perm())
	} else if err == nil && apply(opts).forceMode && fi.Mode().Perm() != perm.Perm() {
		fmt.Fprintf(d.log, "[dryrun] Would set the mode of directory %s to %04o\n", dir, perm.Perm())
	}
	return nil
}

func (d *dryRun) Symlink(target, link string) error {
	fmt.Fprintf(d.log, "[dryrun] Would link %s -> %s\n", link, target)
	return nil
}

func (d *dryRun) Rename(oldpath, newpath string) error {
	fmt.Fprintf(d.log, "[dryrun] Would rename %s to %s\n", oldpath, newpath)
	return nil
}

func (d *dryRun) Remove(path string) error {
	if _, err := os.Lstat(path); err == nil {
		fmt.Fprintf(d.log, "[dryrun] Would remove %s\n", path)
	}
	return nil
}

func (*dryRun) DryRun() bool { return true }
