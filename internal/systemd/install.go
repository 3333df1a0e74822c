package systemd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/progstore"
)

// BinaryMode is the installed kubestrap binary's mode: executable by all, writable by its owner
// (root) only.
const BinaryMode = progstore.Mode

// InstallFS is what InstallBinary reads about files; the zero value is the real file system.
// Tests substitute Owner to play a root-owned tree without being root, and Copy to corrupt the
// bytes, to show that a copy that does not verify is never installed.
type InstallFS = progstore.FS

// InstallBinary makes the component program executable by systemd units that run as root: units
// must never execute a file a non-root user can write, and a build may sit in a user's directory.
// src is a file to install; empty means the running kubestrap's component program (the program a
// front kubestrap carries embedded, or the running monolith itself). It goes to the one
// content-addressed store local mode uses too, p.InstalledBinary(sha256), mode 0755, owned by
// root, with every directory above it, up to "/", owned by root and writable by nobody else (a
// sticky directory such as /tmp is accepted: there others cannot rename or remove what root
// owns); its content is verified against the hash. It returns the installed path. An existing
// verified copy is kept. It fails, naming the offending file or directory, when a safe copy
// cannot be made (not root, or a root dir below a user-writable directory).
//
// A dry-run w only says where the program would go. Otherwise the store is written directly
// (package progstore), not through w: a content-addressed directory assembled under a staging
// name and renamed into place is not a sequence of file writes a recorder could roll back, and
// nothing needs to — an unused copy is harmless, reset removes the state dir.
func InstallBinary(w fsutil.Writer, p paths.Paths, src string, fsys InstallFS, log io.Writer) (string, error) {
	var (
		source progstore.Source
		err    error
	)
	if src == "" {
		source, err = progstore.Running()
	} else if source, err = progstore.FileSource(src, nil); err != nil {
		err = fmt.Errorf("read the kubestrap executable %s: %w", src, err)
	}
	if err != nil {
		return "", err
	}
	dst, err := progstore.Install(p.BinDir(), source, progstore.Options{
		UID: 0, Chain: true, DryRun: w.DryRun(), FS: fsys, Log: log, Prefix: "[control-plane]",
	})
	if err != nil {
		return "", unsafeInstall(p.InstalledBinary(source.Hex()), err)
	}
	return dst, nil
}

func unsafeInstall(dst string, err error) error {
	return fmt.Errorf("cannot install the kubestrap binary for systemd at %s: %w; systemd runs the control plane as root, so the binary and every directory above it must be owned by root and writable by nobody else: run init as root, with a --root-dir whose parent directories only root can write", dst, err)
}

// CheckInstalled checks that path is a binary systemd units may run as root: a regular file owned
// by root, mode 0755, in directories only root can write (see InstallBinary).
func CheckInstalled(path string, fsys InstallFS) error {
	if err := progstore.CheckFile(path, 0, fsys); err != nil {
		return unsafeInstall(path, err)
	}
	if err := checkDirChain(filepath.Dir(path), fsys, false); err != nil {
		return unsafeInstall(path, err)
	}
	return nil
}

// CheckRootProgram checks that a program a unit runs as root (the kubelet, which kubestrap does
// not install) can be replaced by root only: the file, and any symlink leading to it, owned by
// root and not writable by group or others, in directories that only root can write (as for
// InstallBinary). A program that does not exist yet passes when the directories that do exist
// are safe, since then only root can create it there. The error names the offending path and the
// commands that fix it.
func CheckRootProgram(path string, fsys InstallFS) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("the program %q run as root must be an absolute path", path)
	}
	if err := checkProgram(filepath.Clean(path), fsys, 0); err != nil {
		return fmt.Errorf("refusing to run %s as root from a systemd unit: %w; only root may be able to change the program and the directories above it: fix the owner and mode (chown root:root <path>; chmod go-w <path>) or use a root-owned copy", path, err)
	}
	return nil
}

// maxLinks bounds the symlinks followed to a program, as the kernel's ELOOP limit does.
const maxLinks = 40

func checkProgram(path string, fsys InstallFS, links int) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return checkDirChain(filepath.Dir(path), fsys, true)
	}
	if err != nil {
		return err
	}
	if uid, ok := fsys.FileOwner(fi); !ok || uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root (chown root:root %s)", path, uid, path)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		// One hop at a time, so that every link on the way (/usr/bin/kubelet ->
		// /etc/alternatives/kubelet -> ...) is checked, not only the last file.
		if links >= maxLinks {
			return fmt.Errorf("%s: too many levels of symbolic links", path)
		}
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(target) {
			// Relative to the directory the link really is in, as the kernel resolves it.
			dir, err := filepath.EvalSymlinks(filepath.Dir(path))
			if err != nil {
				return err
			}
			target = filepath.Join(dir, target)
		}
		if err := checkProgram(filepath.Clean(target), fsys, links+1); err != nil {
			return fmt.Errorf("%s leads to %s: %w", path, target, err)
		}
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s (mode %04o) is writable by group or others (chmod go-w %s)", path, fi.Mode().Perm(), path)
	}
	return checkDirChain(filepath.Dir(path), fsys, false)
}

// checkDirChain: see progstore.CheckDirChain.
func checkDirChain(dir string, fsys InstallFS, missingOK bool) error {
	return progstore.CheckDirChain(dir, fsys, missingOK)
}
