// Package progstore owns the component program: the multi-call kubestrap that links the bundled
// kube-apiserver, kube-controller-manager, kube-scheduler and etcd, and the one content-addressed
// place it is installed to, <bin dir>/<sha256>/kubestrap (the bin dir is
// /var/lib/kubestrap/bin, under the root dir in local mode).
//
// A plain `go build ./cmd/kubestrap` is the monolith: it is the component program itself, so local
// mode runs components from it directly and systemd mode installs a copy. The release build
// (hack/build.sh) is a small front program that carries the component program embedded and
// extracts it here the first time it is needed, so that commands which do not run a component
// never initialise the control plane's packages. Either way, whatever a unit, the supervisor or a
// re-exec runs is a file in this store that was verified (owner, mode, SHA-256) before use.
package progstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/logx"
)

// FileName is the component program's file name inside its content-addressed directory. It is
// what /proc/PID/comm shows for `kubestrap kube-apiserver ...`, as for the monolith.
const FileName = "kubestrap"

// Mode is the installed program's mode: executable by all, writable by its owner only.
const Mode fs.FileMode = 0o755

// Source is a component program to install: its SHA-256, the names of the components it runs
// (each gets a symlink <name> -> kubestrap next to it, so that a re-exec through it is named
// after the component in ps and /proc/PID/comm) and how to read its bytes.
type Source struct {
	Sum [sha256.Size]byte
	// Components are the component names the program dispatches on argv[0].
	Components []string
	// Desc names the source in messages ("the embedded component program", a file path).
	Desc string
	// Open returns the program's bytes.
	Open func() (io.ReadCloser, error)
	// Range, when set, finds the same bytes as the range [off, off+size) of the file f, which
	// cannot change while it is open (the running executable; see locate.go): Install copies
	// them in the kernel and checks samples instead of hashing them. An error means they cannot
	// be found that way; Install then copies from Open and hashes.
	Range func() (f *os.File, off, size int64, err error)
}

// Hex is the source's SHA-256 in hex, the name of its directory.
func (s Source) Hex() string { return hex.EncodeToString(s.Sum[:]) }

// FileSource is the program in the file at path. It hashes the file (a ~200 MB stream, never held
// in memory).
func FileSource(path string, componentNames []string) (Source, error) {
	sum, err := HashFile(path)
	if err != nil {
		return Source{}, err
	}
	return Source{Sum: sum, Components: componentNames, Desc: path, Open: func() (io.ReadCloser, error) {
		return os.Open(path)
	}}, nil
}

// Embedded is a component program carried inside the running binary (the front program), with
// the SHA-256 the build recorded for it.
type Embedded struct {
	Data       string
	Sum        [sha256.Size]byte
	Components []string
}

func (e *Embedded) source() Source {
	return Source{Sum: e.Sum, Components: e.Components, Desc: "the embedded component program", Open: func() (io.ReadCloser, error) {
		// Only an io.Reader: strings.Reader's WriteTo would hand the hashing MultiWriter the
		// whole 200 MB string at once, which it converts to a 200 MB []byte copy.
		return io.NopCloser(struct{ io.Reader }{strings.NewReader(e.Data)}), nil
	}, Range: func() (*os.File, int64, int64, error) {
		f, off, err := Locate(e.Data, "/proc/self/exe", "/proc/self/maps")
		return f, off, int64(len(e.Data)), err
	}}
}

// The running binary's kind, set once by main before anything else runs: embedded is the
// front's payload (nil in the monolith); monolithComponents are the monolith's own component
// names.
var (
	embedded           *Embedded
	monolithComponents []string
)

// SetEmbedded declares the running binary a front program carrying e.
func SetEmbedded(e *Embedded) { embedded = e }

// SetMonolith declares the running binary the component program itself, running names.
func SetMonolith(names []string) { monolithComponents = names }

// IsFront reports whether the running binary carries the component program embedded.
func IsFront() bool { return embedded != nil }

// Running is the component program of the running binary, to install: the embedded one, or the
// running executable itself.
func Running() (Source, error) {
	if embedded != nil {
		return embedded.source(), nil
	}
	exe, err := os.Executable()
	if err != nil {
		return Source{}, fmt.Errorf("find the kubestrap executable: %w", err)
	}
	src, err := FileSource(exe, monolithComponents)
	if err != nil {
		return Source{}, fmt.Errorf("read the kubestrap executable %s: %w", exe, err)
	}
	return src, nil
}

// FS is what Install reads about files; the zero value is the real file system. Tests substitute
// Owner to play a root-owned tree without being root, and Copy to corrupt the bytes.
type FS struct {
	// Owner returns the uid that owns the file fi describes (from its syscall.Stat_t).
	Owner func(fi fs.FileInfo) (uint32, bool)
	// Copy copies the program into the new file (io.Copy).
	Copy func(dst io.Writer, src io.Reader) (int64, error)
}

func (f FS) copy(dst io.Writer, src io.Reader) (int64, error) {
	if f.Copy != nil {
		return f.Copy(dst, src)
	}
	return io.Copy(dst, src)
}

// FileOwner returns the uid that owns fi.
func (f FS) FileOwner(fi fs.FileInfo) (uint32, bool) {
	if f.Owner != nil {
		return f.Owner(fi)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// Options control Install.
type Options struct {
	// UID must own the directory, the program and its links: 0 for anything run as root.
	UID uint32
	// Chain also requires every directory from the store up to "/" to be owned by root and
	// writable by nobody else (sticky directories excepted): a program run as root (a systemd
	// unit, a root supervisor) must not sit below a directory a user could rename.
	Chain  bool
	DryRun bool
	FS     FS
	// Log receives the progress line and, at -v 1, the files written (logx).
	Log io.Writer
	// Prefix starts the progress line ("[control-plane]").
	Prefix string
}

func (o Options) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// ProgramPath is the program of the source whose SHA-256 is hexSum in store dir.
func ProgramPath(dir, hexSum string) string { return filepath.Join(dir, hexSum, FileName) }

// Install makes src available as dir/<sha256>/kubestrap, mode 0755, with a symlink per
// component beside it, and returns the program's path. An existing directory is used only after
// it verified: directory, program and links owned by o.UID and writable by nobody else, the
// program's bytes hashing to src.Sum. Anything else found there is replaced, never executed. A
// new directory is assembled under a temporary name and renamed into place, so a reader never
// sees a partial one and two concurrent first runs both end up with one complete copy. With
// o.Chain the directories above must be safe for root too (checked before anything is written).
func Install(dir string, src Source, o Options) (string, error) {
	hexSum := src.Hex()
	final := filepath.Join(dir, hexSum)
	prog := filepath.Join(final, FileName)
	if o.DryRun {
		fmt.Fprintf(o.log(), "[dryrun] Would install %s to %s (mode %04o)\n", src.Desc, prog, Mode)
		return prog, nil
	}
	verr := Verify(final, src, o)
	if verr == nil {
		if o.Chain {
			if err := CheckDirChain(dir, o.FS, false); err != nil {
				return "", err
			}
		}
		if o.Prefix != "" {
			fmt.Fprintf(o.log(), "%s Using existing kubestrap binary %s\n", o.Prefix, prog)
		}
		return prog, nil
	}
	if o.Chain {
		if err := CheckDirChain(dir, o.FS, true); err != nil {
			return "", err
		}
	}
	if o.Prefix != "" {
		fmt.Fprintf(o.log(), "%s Installing %s to %s\n", o.Prefix, src.Desc, prog)
	}
	if _, err := os.Lstat(final); err == nil {
		logx.Printf(o.log(), 1, "replacing %s: %v", final, verr)
	}
	if err := os.MkdirAll(dir, fsutil.DirMode); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp(dir, "."+hexSum+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage) // a no-op once renamed into place
	if err := os.Chmod(stage, fsutil.DirMode); err != nil {
		return "", err
	}
	if err := write(filepath.Join(stage, FileName), src, o); err != nil {
		return "", fmt.Errorf("install %s at %s: %w; nothing was installed, run the command again", src.Desc, prog, err)
	}
	for _, name := range src.Components {
		if err := validLinkName(name); err != nil {
			return "", err
		}
		if err := os.Symlink(FileName, filepath.Join(stage, name)); err != nil {
			return "", err
		}
	}
	if err := place(stage, final, src, o); err != nil {
		return "", err
	}
	// The bytes were hashed on their way into the file or are a checked copy of the running
	// executable's own (see write), which no one else can have changed since (or another run's
	// copy was verified by place): the owners, modes and links are checked again below, the
	// 200 MB are not read twice.
	if fi, err := os.Stat(prog); err == nil {
		logx.FileWritten(o.log(), prog, Mode, int(fi.Size()), false)
	}
	if o.Chain {
		if err := CheckDirChain(final, o.FS, false); err != nil {
			return "", err
		}
	}
	if err := verifyMeta(final, src, o); err != nil {
		return "", err
	}
	return prog, nil
}

// place renames the staged directory to final. When final exists, it is either a complete copy a
// concurrent run just placed (kept, after verifying) or something else, which is moved aside and
// removed.
func place(stage, final string, src Source, o Options) error {
	err := os.Rename(stage, final)
	if err == nil {
		return nil
	}
	if _, lerr := os.Lstat(final); lerr != nil {
		return err // nothing in the way: a real failure
	}
	if Verify(final, src, o) == nil {
		return nil // another run's identical copy won the race
	}
	old, err := os.MkdirTemp(filepath.Dir(final), "."+filepath.Base(final)+".old-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(old)
	if err := os.Rename(final, filepath.Join(old, "x")); err != nil {
		return fmt.Errorf("cannot replace %s, which does not hold %s: %w; remove it", final, src.Desc, err)
	}
	return os.Rename(stage, final)
}

// Verify checks dir as Install leaves it: a directory, the program and one link per component,
// all owned by o.UID and writable by nobody else, the program hashing to src.Sum.
func Verify(dir string, src Source, o Options) error {
	if err := verifyMeta(dir, src, o); err != nil {
		return err
	}
	prog := filepath.Join(dir, FileName)
	got, err := HashFile(prog)
	if err != nil {
		return fmt.Errorf("read %s: %w", prog, err)
	}
	if got != src.Sum {
		return fmt.Errorf("%s does not hold the bytes of %s (SHA-256 %x)", prog, src.Desc, src.Sum)
	}
	return nil
}

// verifyMeta is Verify without reading the program's bytes.
func verifyMeta(dir string, src Source, o Options) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if err := owned(dir, fi, o); err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("directory %s (mode %04o) is writable by group or others", dir, fi.Mode().Perm())
	}
	prog := filepath.Join(dir, FileName)
	if err := CheckFile(prog, o.UID, o.FS); err != nil {
		return err
	}
	for _, name := range src.Components {
		link := filepath.Join(dir, name)
		fi, err := os.Lstat(link)
		if err != nil {
			return err
		}
		if err := owned(link, fi, o); err != nil {
			return err
		}
		if target, err := os.Readlink(link); err != nil || target != FileName {
			return fmt.Errorf("%s is not a symlink to %s", link, FileName)
		}
	}
	return nil
}

func owned(path string, fi fs.FileInfo, o Options) error {
	if uid, ok := o.FS.FileOwner(fi); !ok || uid != o.UID {
		return fmt.Errorf("%s is owned by uid %d, not %d", path, uid, o.UID)
	}
	return nil
}

// CheckFile checks that path is a regular file owned by uid with mode Mode.
func CheckFile(path string, uid uint32, fsys FS) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if got, ok := fsys.FileOwner(fi); !ok || got != uid {
		if uid == 0 {
			return fmt.Errorf("%s is owned by uid %d, not root", path, got)
		}
		return fmt.Errorf("%s is owned by uid %d, not %d", path, got, uid)
	}
	if fi.Mode().Perm() != Mode {
		return fmt.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), Mode)
	}
	return nil
}

// HashFile returns the SHA-256 of the file at path, read as a stream.
func HashFile(path string) ([sha256.Size]byte, error) {
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

// write writes the program file at path (in the staging directory): copied in the kernel from
// the source's file range when it has one (see locate.go), else copied and hashed.
func write(path string, src Source, o Options) error {
	if src.Range != nil {
		f, off, size, err := src.Range()
		if err == nil {
			defer f.Close()
			return writeRange(path, src, f, off, size, o)
		}
		logx.Printf(o.log(), 1, "copying %s from memory and hashing it: %v", src.Desc, err)
	}
	return fsutil.WriteStreamAtomic(path, Mode, func(w io.Writer) error { return copyVerified(w, src, o.FS) })
}

// writeRange copies the range [off, off+size) of f to path in the kernel and checks samples of
// the copy against f.
func writeRange(path string, src Source, f *os.File, off, size int64, o Options) error {
	begin := time.Now()
	if err := fsutil.WriteStreamAtomic(path, Mode, func(w io.Writer) error {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
		// A LimitedReader over the file is what lets os.File's ReadFrom use copy_file_range.
		n, err := o.FS.copy(w, &io.LimitedReader{R: f, N: size})
		if err != nil {
			return fmt.Errorf("copy %s: %w", src.Desc, err)
		}
		if n != size {
			return fmt.Errorf("copy %s: %d of %d bytes copied", src.Desc, n, size)
		}
		return nil
	}); err != nil {
		return err
	}
	copied, err := os.Open(path)
	if err != nil {
		return err
	}
	defer copied.Close()
	if err := checkSamples(copied, 0, f, off, size); err != nil {
		os.Remove(path)
		return fmt.Errorf("the copy of %s from %s differs from it: %w", src.Desc, f.Name(), err)
	}
	logx.Printf(o.log(), 1, "copied %s from %s (%d bytes at offset %d) in %s", src.Desc, f.Name(), size, off, time.Since(begin).Round(time.Millisecond))
	return nil
}

// copyVerified copies src into w and fails unless what was written hashes to src.Sum: a file
// source may have changed since it was hashed (a rebuild), or the copy gone wrong, and the file
// about to be renamed into place must be exactly the program whose hash names its directory.
func copyVerified(w io.Writer, src Source, fsys FS) error {
	r, err := src.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := fsys.copy(io.MultiWriter(w, h), r); err != nil {
		return fmt.Errorf("copy %s: %w", src.Desc, err)
	}
	if got := h.Sum(nil); string(got) != string(src.Sum[:]) {
		return fmt.Errorf("the copy of %s does not match its SHA-256 %x (did the file change during the install?)", src.Desc, src.Sum)
	}
	return nil
}

func validLinkName(name string) error {
	if name == "" || name == FileName || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid component name %q", name)
	}
	return nil
}

// CheckDirChain checks dir and each of its parents up to "/": each must be owned by root and not
// writable by group or others unless sticky (then others cannot rename or remove what root owns
// in it). A symlink on the way must be root's too, and the directory it leads to is checked the
// same way. With missingOK, directories that do not exist yet (root is about to create them) are
// skipped.
func CheckDirChain(dir string, fsys FS, missingOK bool) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist) && missingOK:
		case err != nil:
			return err
		default:
			if uid, ok := fsys.FileOwner(fi); !ok || uid != 0 {
				return fmt.Errorf("%s is owned by uid %d, not root", d, uid)
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := filepath.EvalSymlinks(d)
				if err != nil {
					return err
				}
				if err := CheckDirChain(target, fsys, false); err != nil {
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
