package systemd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// BinaryMode is the installed kubestrap binary's mode: executable by all, writable by its owner
// (root) only.
const BinaryMode fs.FileMode = 0o755

// InstallFS is what InstallBinary reads about files; the zero value is the real file system.
// Tests substitute Owner to play a root-owned tree without being root.
type InstallFS struct {
	// Owner returns the uid that owns the file fi describes (from its syscall.Stat_t).
	Owner func(fi fs.FileInfo) (uint32, bool)
	// Copy copies the binary into the new file (io.Copy). Tests substitute one that corrupts
	// the bytes, to show that a copy that does not verify is never installed.
	Copy func(dst io.Writer, src io.Reader) (int64, error)
}

func (f InstallFS) copy(dst io.Writer, src io.Reader) (int64, error) {
	if f.Copy != nil {
		return f.Copy(dst, src)
	}
	return io.Copy(dst, src)
}

func (f InstallFS) owner(fi fs.FileInfo) (uint32, bool) {
	if f.Owner != nil {
		return f.Owner(fi)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// InstallBinary makes the kubestrap binary at src executable by systemd units that run as root:
// units must never execute a file a non-root user can write, and src may be in a user's build
// directory. It copies src to p.InstalledBinary(sha256 of src), mode 0755, and checks that the
// copy and every directory above it, up to "/", is owned by root and writable by nobody else
// (a sticky directory such as /tmp is accepted: there others cannot rename or remove what root
// owns); the copy's content is verified against src after writing. It returns the installed
// path. An existing verified copy is kept. It fails, naming the offending file or directory, when
// a safe copy cannot be made (not root, or a root dir below a user-writable directory).
// The copy is written through w; a dry-run writer only says where it would go.
func InstallBinary(w fsutil.Writer, p paths.Paths, src string, fsys InstallFS, log io.Writer) (string, error) {
	if src == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find the kubestrap executable: %w", err)
		}
		src = exe
	}
	// The binary is ~200 MB: it is hashed and copied as a stream, never held in memory.
	sum, err := hashFile(src)
	if err != nil {
		return "", fmt.Errorf("read the kubestrap executable %s: %w", src, err)
	}
	dst := p.InstalledBinary(hex.EncodeToString(sum[:]))
	if w.DryRun() {
		// Not a file write the dry-run writer can show: the copy is only checked as root, and
		// streaming 200 MB to print one line is waste.
		fmt.Fprintf(log, "[dryrun] Would install %s to %s (mode %04o, owned by root) for the systemd units\n", src, dst, BinaryMode)
		return dst, nil
	}
	if err := verifyInstalled(dst, sum, fsys); err == nil {
		fmt.Fprintf(log, "[control-plane] Using existing kubestrap binary %s\n", dst)
		return dst, nil
	}
	fmt.Fprintf(log, "[control-plane] Installing %s to %s for the systemd units\n", src, dst)
	// Refuse before writing anything when the place is unsafe anyway.
	if err := checkDirChain(filepath.Dir(dst), fsys, true); err != nil {
		return "", unsafeInstall(dst, err)
	}
	if err := w.WriteStream(dst, BinaryMode, func(out io.Writer) error {
		return copyVerified(out, src, sum, fsys)
	}); err != nil {
		return "", fmt.Errorf("install the kubestrap binary for systemd at %s: %w; nothing was installed, run the command again", dst, err)
	}
	if err := checkDirChain(filepath.Dir(dst), fsys, false); err != nil {
		return "", unsafeInstall(dst, err)
	}
	if err := verifyInstalled(dst, sum, fsys); err != nil {
		return "", unsafeInstall(dst, err)
	}
	return dst, nil
}

// hashFile returns the SHA-256 of the file at path, read as a stream.
func hashFile(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// copyVerified copies src into w and fails unless what was written hashes to sum: src may have
// changed since it was hashed (a rebuild), or the copy gone wrong, and the file about to be
// renamed into place must be exactly the binary whose hash names its directory.
func copyVerified(w io.Writer, src string, sum [sha256.Size]byte, fsys InstallFS) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := fsys.copy(io.MultiWriter(w, h), f); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return fmt.Errorf("the copy of %s does not match its SHA-256 %x (did the file change during the install?)", src, sum)
	}
	return nil
}

func unsafeInstall(dst string, err error) error {
	return fmt.Errorf("cannot install the kubestrap binary for systemd at %s: %w; systemd runs the control plane as root, so the binary and every directory above it must be owned by root and writable by nobody else: run init as root, with a --root-dir whose parent directories only root can write", dst, err)
}

// CheckInstalled checks that path is a binary systemd units may run as root: a regular file owned
// by root, mode 0755, in directories only root can write (see InstallBinary).
func CheckInstalled(path string, fsys InstallFS) error {
	if err := checkFile(path, fsys); err != nil {
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
	if uid, ok := fsys.owner(fi); !ok || uid != 0 {
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

func checkFile(path string, fsys InstallFS) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if uid, ok := fsys.owner(fi); !ok || uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root", path, uid)
	}
	if fi.Mode().Perm() != BinaryMode {
		return fmt.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), BinaryMode)
	}
	return nil
}

// verifyInstalled checks that path is a regular file owned by root with mode BinaryMode and the
// content whose SHA-256 is sum.
func verifyInstalled(path string, sum [sha256.Size]byte, fsys InstallFS) error {
	if err := checkFile(path, fsys); err != nil {
		return err
	}
	got, err := hashFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if got != sum {
		return fmt.Errorf("%s does not hold the same bytes as the running kubestrap", path)
	}
	return nil
}

// checkDirChain checks dir and each of its parents up to "/": each must be owned by root and not
// writable by group or others unless sticky (then others cannot rename or remove what root owns
// in it). A symlink on the way must be root's too, and the directory it leads to is checked the
// same way. With missingOK, directories that do not exist yet (root is about to create them) are
// skipped.
func checkDirChain(dir string, fsys InstallFS, missingOK bool) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist) && missingOK:
		case err != nil:
			return err
		default:
			if uid, ok := fsys.owner(fi); !ok || uid != 0 {
				return fmt.Errorf("%s is owned by uid %d, not root", d, uid)
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := filepath.EvalSymlinks(d)
				if err != nil {
					return err
				}
				if err := checkDirChain(target, fsys, false); err != nil {
					return fmt.Errorf("%s leads to %s: %w", d, target, err)
				}
			case !fi.IsDir():
				return fmt.Errorf("%s is not a directory", d)
			case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0:
				return fmt.Errorf("directory %s (mode %04o) is writable by group or others", d, fi.Mode().Perm())
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
