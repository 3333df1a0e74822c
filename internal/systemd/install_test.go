package systemd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fakeBinary writes an executable "kubestrap" into a world-writable directory, as a user's build
// directory might be.
func fakeBinary(t *testing.T, content string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "build")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "kubestrap")
	if err := os.WriteFile(src, []byte(content), 0o777); err != nil {
		t.Fatal(err)
	}
	return src
}

// TestInstallFromWorldWritableDir: a unit runs as root, so the binary in a world-writable build
// directory is copied to a root-owned, content-addressed place, mode 0755, and the unit's
// component link points at the copy, never at the original.
func TestInstallFromWorldWritableDir(t *testing.T) {
	t.Parallel()
	src := fakeBinary(t, "#!/bin/sh\necho kubestrap\n")
	p := paths.MustUnder(t.TempDir())
	cfg := baseConfig()
	var log bytes.Buffer
	files := writeAll(t, cfg, p, Options{Log: &log, Executable: src, FS: rootOwned})

	want := p.InstalledBinary(sha256File(t, src))
	fi, err := os.Lstat(want)
	if err != nil {
		t.Fatalf("not installed: %v\n%s", err, log.String())
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: mode %v, want a regular file 0755", want, fi.Mode())
	}
	if got, _ := os.ReadFile(want); string(got) != "#!/bin/sh\necho kubestrap\n" {
		t.Errorf("%s holds %q", want, got)
	}
	for dir := filepath.Dir(want); dir != p.Root(); dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s: %v, %v; want a directory writable by its owner only", dir, fi.Mode(), err)
		}
	}
	for i, c := range components.ControlPlane(cfg, p) {
		link := p.ComponentBinary(c.Name)
		if target, err := os.Readlink(link); err != nil || target != want {
			t.Errorf("%s -> %q (%v), want %s", link, target, err, want)
		}
		unit, _ := os.ReadFile(files[i])
		if !strings.Contains(string(unit), "ExecStart="+link+" ") {
			t.Errorf("%s does not run %s", files[i], link)
		}
		if strings.Contains(string(unit), filepath.Dir(src)) {
			t.Errorf("%s names the user-writable build dir %s", files[i], filepath.Dir(src))
		}
	}
	if !strings.Contains(log.String(), "Installing "+src+" to "+want) {
		t.Errorf("log lacks the install line:\n%s", log.String())
	}

	// A copy changed behind kubestrap's back (another owner's bytes) is replaced, not trusted.
	if err := os.WriteFile(want, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := InstallBinary(fsutil.NewDisk(nil), p, src, rootOwned, &log); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(want); string(got) != "#!/bin/sh\necho kubestrap\n" {
		t.Errorf("a tampered copy was kept: %q", got)
	}
}

// TestInstallRefusesUnsafePlaces: where root cannot own the whole way down (a root dir in a
// user's directory, or a directory others may write), systemd mode refuses with an error that
// names the directory, and links nothing.
func TestInstallRefusesUnsafePlaces(t *testing.T) {
	t.Parallel()
	src := fakeBinary(t, "binary")
	cfg := baseConfig()
	etcd := components.Etcd(cfg, paths.MustUnder("/"))

	t.Run("user-owned root dir", func(t *testing.T) {
		home := t.TempDir()
		fi, _ := os.Stat(home)
		fsys := InstallFS{Owner: func(f fs.FileInfo) (uint32, bool) {
			if os.SameFile(f, fi) {
				return 1000, true
			}
			return 0, true
		}}
		root := filepath.Join(home, "demo")
		os.Mkdir(root, 0o755)
		p := paths.MustUnder(root)
		err := WriteUnit(cfg, p, etcd, Options{Executable: src, FS: fsys, Log: &bytes.Buffer{}})
		if err == nil || !strings.Contains(err.Error(), home+" is owned by uid 1000, not root") || !strings.Contains(err.Error(), "run init as root") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Lstat(p.StateDir()); err == nil {
			t.Errorf("a refused install left %s behind", p.StateDir())
		}
	})
	t.Run("group-writable dir above the root dir", func(t *testing.T) {
		shared := t.TempDir()
		os.Chmod(shared, 0o775)
		root := filepath.Join(shared, "demo")
		os.Mkdir(root, 0o755)
		p := paths.MustUnder(root)
		err := WriteUnit(cfg, p, etcd, Options{Executable: src, FS: rootOwned, Log: &bytes.Buffer{}})
		if err == nil || !strings.Contains(err.Error(), "directory "+shared+" (mode 0775) is writable by group or others") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Lstat(p.ComponentBinary("etcd")); err == nil {
			t.Error("a refused install left a component link")
		}
	})
	t.Run("sticky world-writable dir above the root dir", func(t *testing.T) {
		// As /tmp: others cannot replace what root owns in it.
		tmp := t.TempDir()
		os.Chmod(tmp, os.ModeSticky|0o777)
		root := filepath.Join(tmp, "demo")
		os.Mkdir(root, 0o700)
		p := paths.MustUnder(root)
		if err := WriteUnit(cfg, p, etcd, Options{Executable: src, FS: rootOwned, Log: &bytes.Buffer{}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("installed copy not owned by root", func(t *testing.T) {
		p := paths.MustUnder(t.TempDir())
		dst, err := InstallBinary(fsutil.NewDisk(nil), p, src, rootOwned, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(dst)
		fsys := InstallFS{Owner: func(f fs.FileInfo) (uint32, bool) {
			if os.SameFile(f, fi) {
				return 1000, true
			}
			return 0, true
		}}
		if err := CheckInstalled(dst, fsys); err == nil || !strings.Contains(err.Error(), "owned by uid 1000") {
			t.Errorf("CheckInstalled of a user's file: %v", err)
		}
		err = WriteUnit(cfg, p, etcd, Options{Installed: src, FS: rootOwned, Log: &bytes.Buffer{}})
		if err == nil || !strings.Contains(err.Error(), "mode 0777") {
			t.Errorf("WriteUnit accepted the world-writable original as installed binary: %v", err)
		}
	})
}

// TestInstallRefusesCorruptedCopy: the binary is streamed into place and the bytes written are
// checked against the hash that names the directory; a copy that differs (corrupted on the way,
// or the source changed meanwhile) is refused and leaves no file, not even a temporary one.
func TestInstallRefusesCorruptedCopy(t *testing.T) {
	t.Parallel()
	src := fakeBinary(t, "#!/bin/sh\necho kubestrap\n")
	p := paths.MustUnder(t.TempDir())
	fsys := rootOwned
	fsys.Copy = func(dst io.Writer, src io.Reader) (int64, error) {
		b, err := io.ReadAll(src)
		if err != nil {
			return 0, err
		}
		b[0] ^= 0xff
		n, err := dst.Write(b)
		return int64(n), err
	}
	want := p.InstalledBinary(sha256File(t, src))
	_, err := InstallBinary(fsutil.NewDisk(nil), p, src, fsys, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "does not match its SHA-256") || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(want))
	if len(entries) != 0 {
		t.Errorf("a refused copy left %v in %s", entries, filepath.Dir(want))
	}

	// The same install with a faithful copy succeeds, so the refusal above was the corruption.
	if got, err := InstallBinary(fsutil.NewDisk(nil), p, src, rootOwned, &bytes.Buffer{}); err != nil || got != want {
		t.Fatalf("InstallBinary = %q, %v; want %q", got, err, want)
	}
}
