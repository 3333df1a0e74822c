package fsutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// tree lists everything under root with its type, mode and content (or link target), so two
// listings are equal only when the trees are.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			line += " -> " + target
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(path)
			line += fmt.Sprintf(" %q", data)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func mustWrite(t *testing.T, path, data string, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func TestDiskMkdir(t *testing.T) {
	t.Parallel()
	old := syscall.Umask(0o077)
	syscall.Umask(old)
	root := t.TempDir()
	w := NewDisk(nil)
	dir := filepath.Join(root, "a", "b", "private")
	if err := w.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]fs.FileMode{dir: 0o750, filepath.Dir(dir): DirMode} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	// An existing directory keeps its mode unless ForceMode says otherwise.
	if err := w.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o750 {
		t.Errorf("existing dir changed to %v", fi.Mode().Perm())
	}
	if err := w.Mkdir(dir, 0o700, ForceMode()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("ForceMode left %v", fi.Mode().Perm())
	}
}

func TestDiskSymlinkRenameRemove(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	w := NewDisk(nil)
	link := filepath.Join(root, "bin", "kube-apiserver")
	for _, target := range []string{"/old/kubestrap", "/new/kubestrap"} {
		if err := w.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(link); err != nil || got != target {
			t.Errorf("link -> %q (%v), want %q", got, err, target)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(link)); len(entries) != 1 {
		t.Errorf("temporary links left: %v", entries)
	}
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	mustWrite(t, a, "x", 0o600)
	if err := w.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still there: %v", a, err)
	}
	if err := w.Remove(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Remove(b); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
}

// TestDryRunChangesNothing: every operation of the dry-run writer prints and leaves the tree as it
// was.
func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	existing := filepath.Join(root, "etc", "existing.conf")
	mustWrite(t, existing, "old", 0o644)
	before := tree(t, root)
	var log bytes.Buffer
	w := NewDryRun(&log)
	if !w.DryRun() {
		t.Error("DryRun() = false")
	}
	steps := []struct {
		run  func() error
		want string
	}{
		{func() error { return w.WriteFile(filepath.Join(root, "etc", "pki", "ca.key"), []byte("KEY"), 0o600) },
			"[dryrun] Would write file " + root + "/etc/pki/ca.key\n"},
		{func() error {
			return w.WriteFile(filepath.Join(root, "etc", "manifests", "etcd.yaml"), []byte("kind: Pod\n"), 0o600, ShowContent())
		}, "[dryrun] Would write file " + root + "/etc/manifests/etcd.yaml (mode 0600) with content:\nkind: Pod\n"},
		{func() error {
			return w.WriteFile(existing, []byte("new"), 0o600, Describe("the effective configuration"))
		}, "[dryrun] Would write file " + existing + " (the effective configuration)\n"},
		{func() error {
			_, err := w.CreateExclusive(filepath.Join(root, "etc", "enc.yaml"), []byte("secret"), 0o600, Describe("contents not shown"))
			return err
		}, "[dryrun] Would write file " + root + "/etc/enc.yaml (contents not shown)\n"},
		{func() error {
			return w.WriteStream(filepath.Join(root, "bin", "prog"), 0o755, func(w io.Writer) error { _, err := io.WriteString(w, "ELF"); return err })
		}, "[dryrun] Would write file " + root + "/bin/prog\n"},
		{func() error { return w.Mkdir(filepath.Join(root, "var", "lib", "etcd"), 0o700) },
			"[dryrun] Would create directory " + root + "/var/lib/etcd (mode 0700)\n"},
		{func() error { return w.Mkdir(filepath.Join(root, "var", "lib", "etcd"), 0o700) }, ""}, // said once
		{func() error { return w.Mkdir(filepath.Join(root, "etc"), 0o700) }, ""},
		{func() error { return w.Symlink("/usr/bin/kubestrap", filepath.Join(root, "bin", "etcd")) },
			"[dryrun] Would link " + root + "/bin/etcd -> /usr/bin/kubestrap\n"},
		{func() error { return w.Rename(existing, existing+".bak") },
			"[dryrun] Would rename " + existing + " to " + existing + ".bak\n"},
		{func() error { return w.Remove(existing) }, "[dryrun] Would remove " + existing + "\n"},
		{func() error { return w.Remove(filepath.Join(root, "missing")) }, ""},
	}
	for i, s := range steps {
		log.Reset()
		if err := s.run(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if log.String() != s.want {
			t.Errorf("step %d printed %q, want %q", i, log.String(), s.want)
		}
	}
	if created, _ := w.CreateExclusive(existing, []byte("x"), 0o600); created {
		t.Error("a dry run claims it would create a file that exists")
	}
	if after := tree(t, root); after != before {
		t.Errorf("the dry run changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRecorderRollback: whatever is written, replaced, linked, renamed or removed through a
// Recorder — and whatever appears in a watched directory — a rollback leaves the tree exactly as
// before, including the modes of replaced files and the directories created on the way.
func TestRecorderRollback(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	kept := filepath.Join(root, "etc", "kubernetes", "kept.conf")
	replaced := filepath.Join(root, "etc", "kubernetes", "replaced.conf")
	removed := filepath.Join(root, "etc", "kubernetes", "removed.conf")
	renamed := filepath.Join(root, "etc", "kubernetes", "renamed.conf")
	link := filepath.Join(root, "var", "lib", "kubelet", "pki", "current.pem")
	mustWrite(t, kept, "kept", 0o600)
	mustWrite(t, replaced, "old", 0o640)
	mustWrite(t, removed, "gone?", 0o600)
	mustWrite(t, renamed, "moved?", 0o644)
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("old.pem", link); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root)

	r := NewRecorder(NewDisk(nil))
	steps := []func() error{
		func() error { return r.WriteFile(replaced, []byte("new"), 0o600) },
		func() error { return r.WriteFile(replaced, []byte("newer"), 0o644) }, // the first state counts
		func() error {
			return r.WriteFile(filepath.Join(root, "var", "lib", "kubelet", "config.yaml"), []byte("c"), 0o644)
		},
		func() error { return r.Mkdir(filepath.Join(root, "var", "lib", "etcd", "member"), 0o700) },
		func() error { return r.Symlink("new.pem", link) },
		func() error { return r.Symlink("/x", filepath.Join(root, "new", "bin", "etcd")) },
		func() error { return r.Remove(removed) },
		func() error { return r.Rename(renamed, filepath.Join(root, "etc", "kubernetes", "other.conf")) },
		func() error { return r.Mkdir(filepath.Join(root, "etc", "kubestrap"), 0o700) },
		func() error {
			_, err := r.CreateExclusive(filepath.Join(root, "etc", "kubestrap", "enc.yaml"), []byte("k"), 0o600)
			return err
		},
		func() error {
			return r.WriteStream(filepath.Join(root, "libexec", "kubestrap"), 0o755, func(w io.Writer) error { _, err := io.WriteString(w, "ELF"); return err })
		},
		// Something else (a kubelet) writes into a watched directory.
		func() error { return r.Watch(filepath.Join(root, "var", "lib", "kubelet", "pki")) },
		func() error {
			return os.WriteFile(filepath.Join(root, "var", "lib", "kubelet", "pki", "kubelet-client-2026.pem"), []byte("x"), 0o600)
		},
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if tree(t, root) == before {
		t.Fatal("the steps changed nothing; the test proves nothing")
	}
	if err := r.Rollback(); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, root); after != before {
		t.Errorf("rollback did not restore the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Records are dropped: a second rollback does nothing, and Forget makes changes final.
	if err := r.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile(replaced, []byte("final"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Forget()
	if err := r.Rollback(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(replaced); string(data) != "final" {
		t.Errorf("a rollback after Forget changed %s to %q", replaced, data)
	}
}

// TestRecorderConcurrent: parallel writes (pki's) are all recorded and all rolled back.
func TestRecorderConcurrent(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	before := tree(t, root)
	r := NewRecorder(NewDisk(nil))
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.WriteFile(filepath.Join(root, "pki", fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%d", i)), []byte("x"), 0o600)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := r.Rollback(); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, root); after != before {
		t.Errorf("left behind:\n%s", after)
	}
}

// TestRecorderRefusesDirectory: a path that is a directory cannot be recorded, so nothing is
// written over it.
func TestRecorderRefusesDirectory(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	r := NewRecorder(NewDisk(nil))
	if err := r.WriteFile(root, []byte("x"), 0o600); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("err = %v", err)
	}
}

// TestRecorderOverDryRun: a Recorder over the dry-run writer prints and writes nothing, and says it
// is a dry run.
func TestRecorderOverDryRun(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	var log bytes.Buffer
	r := NewRecorder(NewDryRun(&log))
	if !r.DryRun() {
		t.Error("DryRun() = false")
	}
	if err := r.WriteFile(filepath.Join(root, "a", "b"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dry run created a directory: %v", err)
	}
	if !strings.Contains(log.String(), "[dryrun] Would write file") {
		t.Errorf("log %q", log.String())
	}
}

// TestRecorderTrackForeignWrite: a link that something other than the Recorder switches (the
// kubelet's certificate store) is put back once tracked, and the directories created on the way
// to another file are removed.
func TestRecorderTrackForeignWrite(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	link := filepath.Join(root, "a", "current")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("old-target", link); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root)
	r := NewRecorder(NewDisk(nil))
	if err := r.WriteFile(filepath.Join(root, "a", "b", "c", "new"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Track(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("new-target", link); err != nil {
		t.Fatal(err)
	}
	if err := r.Rollback(); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, root); after != before {
		t.Errorf("after rollback:\n%s\nwant:\n%s", after, before)
	}
}
