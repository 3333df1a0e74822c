package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
)

// Recorder is a Writer that passes every change on to another Writer and remembers, before the
// first change of each path, what was there (content and mode, a symlink's target, or nothing)
// and which directories did not exist yet. Rollback then puts back exactly that, newest change
// first, so that a workflow that fails halfway (join) leaves the root as it found it — including
// files written by a package the workflow's own code never names. Safe for concurrent use (pki
// writes its files in parallel).
type Recorder struct {
	w Writer

	mu      sync.Mutex
	entries []*recorded
	byPath  map[string]*recorded
	// dirs are the directories that did not exist when first needed, in the order found.
	dirs []string
	// watched are directories whose new entries (written by someone else, e.g. the kubelet) are
	// removed on rollback; the value lists the entries present when watching started.
	watched map[string]map[string]bool
}

// recorded is the original state of one path.
type recorded struct {
	path    string
	existed bool
	mode    fs.FileMode
	data    []byte // regular file content
	link    string // symlink target
}

// NewRecorder returns a Recorder that writes through w.
func NewRecorder(w Writer) *Recorder {
	return &Recorder{w: w, byPath: map[string]*recorded{}, watched: map[string]map[string]bool{}}
}

func (r *Recorder) WriteFile(path string, data []byte, perm fs.FileMode, opts ...Option) error {
	if err := r.Track(path); err != nil {
		return err
	}
	return r.w.WriteFile(path, data, perm, opts...)
}

func (r *Recorder) WriteStream(path string, perm fs.FileMode, fill func(io.Writer) error, opts ...Option) error {
	if err := r.Track(path); err != nil {
		return err
	}
	return r.w.WriteStream(path, perm, fill, opts...)
}

func (r *Recorder) CreateExclusive(path string, data []byte, perm fs.FileMode, opts ...Option) (bool, error) {
	if err := r.Track(path); err != nil {
		return false, err
	}
	return r.w.CreateExclusive(path, data, perm, opts...)
}

func (r *Recorder) Mkdir(dir string, perm fs.FileMode, opts ...Option) error {
	r.mu.Lock()
	err := r.trackDirs(dir)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.w.Mkdir(dir, perm, opts...)
}

func (r *Recorder) Symlink(target, link string) error {
	if err := r.Track(link); err != nil {
		return err
	}
	return r.w.Symlink(target, link)
}

func (r *Recorder) Rename(oldpath, newpath string) error {
	if err := r.Track(oldpath); err != nil {
		return err
	}
	if err := r.Track(newpath); err != nil {
		return err
	}
	return r.w.Rename(oldpath, newpath)
}

func (r *Recorder) Remove(path string) error {
	if err := r.Track(path); err != nil {
		return err
	}
	return r.w.Remove(path)
}

func (r *Recorder) DryRun() bool { return r.w.DryRun() }

// Track records path's current state, and the missing directories above it, the first time it
// is seen, without changing it: for a file that something other than a Writer is about to
// write (a library's own file store, the kubelet), so that Rollback restores it too. Only
// regular files, symlinks and absent paths can be recorded; anything else is an error.
func (r *Recorder) Track(path string) error {
	path = filepath.Clean(path)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byPath[path]; ok {
		return nil
	}
	e := &recorded{path: path}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		e.existed, e.mode = true, fi.Mode()
		if e.link, err = os.Readlink(path); err != nil {
			return err
		}
	case fi.Mode().IsRegular():
		e.existed, e.mode = true, fi.Mode().Perm()
		if e.data, err = os.ReadFile(path); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s exists and is not a regular file: remove it first", path)
	}
	if err := r.trackDirs(filepath.Dir(path)); err != nil {
		return err
	}
	r.byPath[path] = e
	r.entries = append(r.entries, e)
	return nil
}

// trackDirs records which of dir and its ancestors do not exist yet. r.mu is held.
func (r *Recorder) trackDirs(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		_, err := os.Lstat(d)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if !slices.Contains(r.dirs, d) {
			r.dirs = append(r.dirs, d)
		}
		if parent := filepath.Dir(d); parent == d {
			return nil
		}
	}
}

// Watch records the entries of dir, so that entries something else adds to it later (a kubelet
// doing its own TLS bootstrap, a certificate store choosing a dated name) are removed on
// rollback. A missing dir is recorded as created.
func (r *Recorder) Watch(dir string) error {
	dir = filepath.Clean(dir)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.watched[dir]; ok {
		return nil
	}
	present := map[string]bool{}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		present[e.Name()] = true
	}
	if err := r.trackDirs(dir); err != nil {
		return err
	}
	r.watched[dir] = present
	return nil
}

// Rollback restores every recorded path (newest change first) through the wrapped Writer,
// removes what appeared in watched directories, then removes the directories that were created,
// deepest first. It continues past errors and returns them all. The records are dropped.
func (r *Recorder) Rollback() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for i := len(r.entries) - 1; i >= 0; i-- {
		if err := r.restore(r.entries[i]); err != nil {
			errs = append(errs, err)
		}
	}
	for dir, present := range r.watched {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !present[e.Name()] {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	dirs := slices.Clone(r.dirs)
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		// Remove, never RemoveAll: a directory that is not empty now holds something that was
		// not written through this Recorder, which is not its to delete.
		if err := r.w.Remove(d); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
		}
	}
	r.forget()
	return errors.Join(errs...)
}

// Forget drops the records: the changes are final, and a later Rollback undoes only what is
// written after this.
func (r *Recorder) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget()
}

func (r *Recorder) forget() {
	r.entries, r.dirs = nil, nil
	r.byPath = map[string]*recorded{}
	r.watched = map[string]map[string]bool{}
}

func (r *Recorder) restore(e *recorded) error {
	switch {
	case !e.existed:
		if err := r.w.Remove(e.path); err != nil {
			return fmt.Errorf("remove %s: %w", e.path, err)
		}
		return nil
	case e.mode&fs.ModeSymlink != 0:
		return r.w.Symlink(e.link, e.path)
	}
	return r.w.WriteFile(e.path, e.data, e.mode)
}
