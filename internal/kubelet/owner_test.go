package kubelet

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// rootOwned plays a file system where root owns everything, so tests need not be root; the
// modes are the real ones.
var rootOwned = systemd.InstallFS{Owner: func(fs.FileInfo) (uint32, bool) { return 0, true }}

// ownedBy returns an InstallFS where the file at path belongs to uid and everything else to root.
func ownedBy(t *testing.T, path string, uid uint32) systemd.InstallFS {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return systemd.InstallFS{Owner: func(f fs.FileInfo) (uint32, bool) {
		if os.SameFile(f, fi) {
			return uid, true
		}
		return 0, true
	}}
}

// TestWriteNodeFilesRefusesUnsafeKubelet: the kubelet unit runs its program as root, so a kubelet
// that a non-root user could replace (their file, a group- or world-writable file or directory,
// a link to such a file) is refused before anything is written, with an error that names the path
// and says how to fix it; a root-owned kubelet in root-only directories is accepted.
func TestWriteNodeFilesRefusesUnsafeKubelet(t *testing.T) {
	t.Parallel()
	kc, err := Configuration(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	// setup returns the kubelet path in a fresh 0755 bin dir, the file 0755.
	setup := func(t *testing.T) (bin, kubelet string) {
		bin = filepath.Join(t.TempDir(), "bin")
		kubelet = filepath.Join(bin, "kubelet")
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kubelet, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{bin, kubelet} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return bin, kubelet
	}
	for _, tc := range []struct {
		name string
		// prepare makes the setup unsafe and returns the kubelet path to use, the ownership
		// seam and the strings the error must contain.
		prepare func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string)
		dryRun  bool
	}{
		{"a user's kubelet", func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string) {
			return kubelet, ownedBy(t, kubelet, 1000), []string{kubelet + " is owned by uid 1000, not root", "chown root:root " + kubelet}
		}, false},
		{"group-writable kubelet", func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string) {
			os.Chmod(kubelet, 0o775)
			return kubelet, rootOwned, []string{kubelet + " (mode 0775) is writable by group or others", "chmod go-w " + kubelet}
		}, false},
		{"world-writable directory", func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string) {
			os.Chmod(bin, 0o777)
			return kubelet, rootOwned, []string{"directory " + bin + " (mode 0777) is writable by group or others", "chmod go-w"}
		}, false},
		{"a user's directory", func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string) {
			return kubelet, ownedBy(t, bin, 1000), []string{bin + " is owned by uid 1000, not root"}
		}, false},
		{"root's link to a user's kubelet", func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string) {
			link := filepath.Join(t.TempDir(), "kubelet")
			if err := os.Symlink(kubelet, link); err != nil {
				t.Fatal(err)
			}
			return link, ownedBy(t, kubelet, 1000), []string{link + " leads to " + kubelet, kubelet + " is owned by uid 1000"}
		}, false},
		{"a user's link on the way to root's kubelet", func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string) {
			// /usr/bin/kubelet -> /etc/alternatives/kubelet -> the program, as update-alternatives
			// arranges it; here the middle link is a user's.
			dir := t.TempDir()
			alt, link := filepath.Join(dir, "alternatives-kubelet"), filepath.Join(dir, "kubelet")
			if err := os.Symlink(kubelet, alt); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("alternatives-kubelet", link); err != nil {
				t.Fatal(err)
			}
			return link, ownedBy(t, alt, 1000), []string{link + " leads to " + alt, alt + " is owned by uid 1000"}
		}, false},
		{"a missing kubelet in a world-writable directory", func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string) {
			os.Remove(kubelet)
			os.Chmod(bin, 0o777)
			return kubelet, rootOwned, []string{"directory " + bin + " (mode 0777)"}
		}, false},
		{"a user's kubelet, dry run", func(t *testing.T, bin, kubelet string) (string, systemd.InstallFS, []string) {
			return kubelet, ownedBy(t, kubelet, 1000), []string{kubelet + " is owned by uid 1000, not root"}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin, kubelet := setup(t)
			path, fsys, want := tc.prepare(t, bin, kubelet)
			root := t.TempDir()
			var log bytes.Buffer
			files := fsutil.NewDisk(&log)
			if tc.dryRun {
				files = fsutil.NewDryRun(&log)
			}
			err := WriteNodeFiles(paths.MustUnder(root), kc, flagCases[0].flags, Options{Log: &log, Kubelet: path, FS: fsys, Files: files})
			if err == nil {
				t.Fatalf("accepted; log:\n%s", log.String())
			}
			for _, w := range append(want, "refusing to run "+path+" as root") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("a refused kubelet left %v under the root", entries)
			}
		})
	}

	t.Run("root's kubelet", func(t *testing.T) {
		t.Parallel()
		_, kubelet := setup(t)
		p := paths.MustUnder(t.TempDir())
		if err := WriteNodeFiles(p, kc, flagCases[0].flags, Options{Kubelet: kubelet, FS: rootOwned}); err != nil {
			t.Fatal(err)
		}
		unit, _ := os.ReadFile(systemd.KubeletUnitPath(p))
		if !strings.Contains(string(unit), "ExecStart="+kubelet+"\n") {
			t.Errorf("unit does not run %s:\n%s", kubelet, unit)
		}
	})
}
