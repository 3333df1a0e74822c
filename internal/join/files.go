package join

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/kubestrap/kubestrap/internal/fsutil"
)

// fileTx records the state of every path join is about to change — and of every directory it is
// about to create — so that a join that fails at any point can put the root dir back exactly as
// it found it: a half-joined node (a bootstrap-kubelet.conf without a kubelet.conf, a key without
// its certificate) is worse than none, because the next join refuses to overwrite it.
type fileTx struct {
	root    string
	entries []*txEntry
	byPath  map[string]*txEntry
	// dirs are the directories that did not exist when first needed, in the order found.
	dirs []string
	// watched are directories whose new entries (written by someone else, e.g. the kubelet) are
	// removed on rollback; the value lists the entries present when watching started.
	watched map[string]map[string]bool
	// log reports each write at -v 1 (fsutil.Log); nil reports nothing.
	log io.Writer
}

// txEntry is the original state of one path.
type txEntry struct {
	path    string
	existed bool
	mode    fs.FileMode
	data    []byte // regular file content
	link    string // symlink target
}

func newFileTx(root string) *fileTx {
	return &fileTx{root: filepath.Clean(root), byPath: map[string]*txEntry{}, watched: map[string]map[string]bool{}}
}

// track records path's current state the first time it is seen, and the missing directories
// above it up to the root.
func (tx *fileTx) track(path string) error {
	path = filepath.Clean(path)
	if _, ok := tx.byPath[path]; ok {
		return nil
	}
	e := &txEntry{path: path}
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
	if err := tx.trackDirs(filepath.Dir(path)); err != nil {
		return err
	}
	tx.byPath[path] = e
	tx.entries = append(tx.entries, e)
	return nil
}

// trackDirs records which of dir and its ancestors (below the root) do not exist yet.
func (tx *fileTx) trackDirs(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); d != tx.root && strings.HasPrefix(d, tx.root+string(filepath.Separator)); d = filepath.Dir(d) {
		_, err := os.Lstat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
	}
	for _, d := range missing {
		if !slices.Contains(tx.dirs, d) {
			tx.dirs = append(tx.dirs, d)
		}
	}
	return nil
}

// watch records the entries of dir so that entries added later (by a kubelet doing its own TLS
// bootstrap) are removed on rollback.
func (tx *fileTx) watch(dir string) error {
	dir = filepath.Clean(dir)
	if _, ok := tx.watched[dir]; ok {
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
	if err := tx.trackDirs(dir); err != nil {
		return err
	}
	tx.watched[dir] = present
	return nil
}

// writeFile writes data atomically, recording the previous state first.
func (tx *fileTx) writeFile(path string, data []byte, perm fs.FileMode) error {
	if err := tx.track(path); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, perm, fsutil.Log(tx.log))
}

// remove deletes path, recording it first so a rollback restores it.
func (tx *fileTx) remove(path string) error {
	if err := tx.track(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// rollback restores every tracked path (newest change first), removes what appeared in watched
// directories, then removes the directories that were created, deepest first. It continues past
// errors and returns them all.
func (tx *fileTx) rollback() error {
	var errs []error
	for i := len(tx.entries) - 1; i >= 0; i-- {
		if err := tx.entries[i].restore(tx.log); err != nil {
			errs = append(errs, err)
		}
	}
	for dir, present := range tx.watched {
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
	dirs := slices.Clone(tx.dirs)
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		// Remove, not RemoveAll: a directory that is not empty now holds something join did
		// not write, which is not join's to delete.
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
		}
	}
	tx.forget()
	return errors.Join(errs...)
}

// forget drops the records: the changes are final.
func (tx *fileTx) forget() {
	tx.entries, tx.dirs = nil, nil
	tx.byPath = map[string]*txEntry{}
	tx.watched = map[string]map[string]bool{}
}

func (e *txEntry) restore(log io.Writer) error {
	if !e.existed {
		if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", e.path, err)
		}
		return nil
	}
	if e.mode&fs.ModeSymlink != 0 {
		os.Remove(e.path)
		return os.Symlink(e.link, e.path)
	}
	return fsutil.WriteFileAtomic(e.path, e.data, e.mode, fsutil.Log(log))
}
