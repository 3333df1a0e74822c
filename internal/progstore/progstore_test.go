package progstore

import (
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var names = []string{"etcd", "kube-apiserver"}

func embeddedSource(content string) Source {
	e := &Embedded{Data: content, Sum: sha256.Sum256([]byte(content)), Components: names}
	return e.source()
}

func self() Options { return Options{UID: uint32(os.Geteuid())} }

// entries lists dir's names, so a test sees leftovers such as staging directories.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestInstallEmbedded(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "bin")
	src := embeddedSource("#!/bin/sh\necho component\n")
	prog, err := Install(dir, src, self())
	if err != nil {
		t.Fatal(err)
	}
	if want := ProgramPath(dir, src.Hex()); prog != want {
		t.Errorf("Install = %s, want %s", prog, want)
	}
	fi, err := os.Lstat(prog)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("%s: %v, %v; want a regular file 0755", prog, fi, err)
	}
	if got, _ := os.ReadFile(prog); string(got) != "#!/bin/sh\necho component\n" {
		t.Errorf("%s holds %q", prog, got)
	}
	for _, n := range names {
		if target, err := os.Readlink(filepath.Join(filepath.Dir(prog), n)); err != nil || target != FileName {
			t.Errorf("link %s -> %q (%v), want %s", n, target, err, FileName)
		}
	}
	if got := entries(t, dir); !slices.Equal(got, []string{src.Hex()}) {
		t.Errorf("%s holds %v, want only the program's directory", dir, got)
	}

	// A second install uses the verified copy: the same file, not a rewrite.
	if _, err := Install(dir, src, self()); err != nil {
		t.Fatal(err)
	}
	if fi2, err := os.Lstat(prog); err != nil || !os.SameFile(fi, fi2) {
		t.Errorf("a verified copy was rewritten")
	}
}

// TestInstallReplacesWrongContent: what is found under the hash's name is executed only when it
// verifies; other bytes, a wrong mode or a link elsewhere are replaced by a fresh copy.
func TestInstallReplacesWrongContent(t *testing.T) {
	t.Parallel()
	const content = "the component program"
	for name, spoil := range map[string]func(t *testing.T, d string){
		"other bytes": func(t *testing.T, d string) {
			if err := os.WriteFile(filepath.Join(d, FileName), []byte("tampered"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
		"writable by others": func(t *testing.T, d string) {
			if err := os.Chmod(filepath.Join(d, FileName), 0o777); err != nil {
				t.Fatal(err)
			}
		},
		"directory writable by others": func(t *testing.T, d string) {
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
		},
		"link elsewhere": func(t *testing.T, d string) {
			link := filepath.Join(d, "etcd")
			os.Remove(link)
			if err := os.Symlink("/bin/sh", link); err != nil {
				t.Fatal(err)
			}
		},
		"link missing": func(t *testing.T, d string) {
			if err := os.Remove(filepath.Join(d, "kube-apiserver")); err != nil {
				t.Fatal(err)
			}
		},
		"a file, not a directory": func(t *testing.T, d string) {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(d, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := embeddedSource(content)
			prog, err := Install(dir, src, self())
			if err != nil {
				t.Fatal(err)
			}
			spoil(t, filepath.Dir(prog))
			if err := Verify(filepath.Dir(prog), src, self()); err == nil {
				t.Fatal("Verify accepted the spoiled copy")
			}
			if _, err := Install(dir, src, self()); err != nil {
				t.Fatal(err)
			}
			if err := Verify(filepath.Dir(prog), src, self()); err != nil {
				t.Errorf("after the second install: %v", err)
			}
			if got := entries(t, dir); !slices.Equal(got, []string{src.Hex()}) {
				t.Errorf("%s holds %v, want only the program's directory", dir, got)
			}
		})
	}
}

// TestInstallWrongOwner: a directory another user owns is never used as is.
func TestInstallWrongOwner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := embeddedSource("program")
	prog, err := Install(dir, src, self())
	if err != nil {
		t.Fatal(err)
	}
	other := self()
	other.UID++
	err = Verify(filepath.Dir(prog), src, other)
	if err == nil || !strings.Contains(err.Error(), "is owned by uid") {
		t.Errorf("Verify for another owner: %v", err)
	}
}

// TestInstallRefusesCorruptedCopy: a copy that differs from the source is refused and leaves
// nothing, not even a staging directory: copied from memory, by the hash that names the
// directory; copied in the kernel from the executable's file range, by the samples compared after
// the copy.
func TestInstallRefusesCorruptedCopy(t *testing.T) {
	t.Parallel()
	corrupt := func(dst io.Writer, r io.Reader) (int64, error) {
		b, err := io.ReadAll(r)
		if err != nil {
			return 0, err
		}
		b[0] ^= 0xff
		n, err := dst.Write(b)
		return int64(n), err
	}
	for _, tc := range []struct {
		name, want string
		hashed     bool
	}{
		{"from memory", "does not match its SHA-256", true},
		{"file range", "the copy of the embedded component program from /proc/self/exe differs from it: the bytes at 0 differ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := embeddedSource("program bytes") // a literal: in the test binary's file
			if tc.hashed {
				src.Range = nil
			}
			o := self()
			o.FS.Copy = corrupt
			_, err := Install(dir, src, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if got := entries(t, dir); len(got) != 0 {
				t.Errorf("a refused copy left %v in %s", got, dir)
			}
		})
	}
}

// TestInstallConcurrentFirstRuns: first runs racing on an empty store all get the one complete
// copy, and no staging directory is left.
func TestInstallConcurrentFirstRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := embeddedSource(strings.Repeat("component program ", 1<<16))
	var wg sync.WaitGroup
	got := make([]string, 8)
	errs := make([]error, len(got))
	for i := range got {
		wg.Go(func() { got[i], errs[i] = Install(dir, src, self()) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != ProgramPath(dir, src.Hex()) {
			t.Errorf("run %d: %q, %v", i, got[i], errs[i])
		}
	}
	if err := Verify(filepath.Join(dir, src.Hex()), src, self()); err != nil {
		t.Error(err)
	}
	if e := entries(t, dir); !slices.Equal(e, []string{src.Hex()}) {
		t.Errorf("%s holds %v, want only the program's directory", dir, e)
	}
}

// TestInstallChainForRoot: for a program run as root, a store below a directory others may write
// is refused before anything is written.
func TestInstallChainForRoot(t *testing.T) {
	t.Parallel()
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o775); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(shared, "var", "lib", "kubestrap", "bin")
	rootOwned := Options{UID: 0, Chain: true, FS: FS{Owner: func(fs.FileInfo) (uint32, bool) { return 0, true }}}
	_, err := Install(dir, embeddedSource("x"), rootOwned)
	if err == nil || !strings.Contains(err.Error(), "directory "+shared+" (mode 0775) is writable by group or others") {
		t.Fatalf("err = %v", err)
	}
	if e := entries(t, shared); len(e) != 0 {
		t.Errorf("a refused install left %v", e)
	}
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(dir, embeddedSource("x"), rootOwned); err != nil {
		t.Errorf("a safe chain: %v", err)
	}
}

func TestFileSource(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kubestrap")
	if err := os.WriteFile(path, []byte("monolith"), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := FileSource(path, names)
	if err != nil {
		t.Fatal(err)
	}
	if src.Sum != sha256.Sum256([]byte("monolith")) {
		t.Errorf("sum %x", src.Sum)
	}
	var log bytes.Buffer
	o := self()
	o.Log, o.Prefix = &log, "[control-plane]"
	prog, err := Install(t.TempDir(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "[control-plane] Installing "+path+" to "+prog) {
		t.Errorf("log: %s", log.String())
	}
}

func TestComponent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		argv     []string
		name     string
		viaArgv0 bool
	}{
		{[]string{"/usr/local/bin/kube-apiserver", "--help"}, "kube-apiserver", true},
		{[]string{"kubestrap", "etcd", "--version"}, "etcd", false},
		{[]string{"kubestrap", "version"}, "", false},
		{[]string{"kubestrap"}, "", false},
		{[]string{"kubestrap", "init", "etcd"}, "", false},
	} {
		name, via := Component(tc.argv, names)
		if name != tc.name || via != tc.viaArgv0 {
			t.Errorf("Component(%q) = %q, %v; want %q, %v", tc.argv, name, via, tc.name, tc.viaArgv0)
		}
	}
}

func TestDispatchDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name   string
		getenv func(string) string
		euid   int
		want   string
		errs   string
	}{
		{"root", env(), 0, "/var/lib/kubestrap/bin", ""},
		{"root dir", env("KUBESTRAP_ROOT_DIR", root), 1000, filepath.Join(root, "var/lib/kubestrap/bin"), ""},
		{"user cache", env("HOME", "/home/u"), 1000, "/home/u/.cache/kubestrap/bin", ""},
		{"XDG cache", env("HOME", "/home/u", "XDG_CACHE_HOME", "/c"), 1000, "/c/kubestrap/bin", ""},
		{"nowhere", env(), 1000, "", "neither XDG_CACHE_HOME nor HOME"},
		{"missing root dir", env("KUBESTRAP_ROOT_DIR", filepath.Join(root, "nope")), 1000, "", "does not exist"},
	} {
		got, err := DispatchDir(tc.getenv, tc.euid)
		switch {
		case tc.errs != "" && (err == nil || !strings.Contains(err.Error(), tc.errs)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.errs)
		case tc.errs == "" && (err != nil || got != tc.want):
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestEmbeddedSourceStreams: extracting the embedded program streams it in small pieces; a single
// write of the whole program means a copy of it was made in memory (200 MB for the real one).
func TestEmbeddedSourceStreams(t *testing.T) {
	t.Parallel()
	content := strings.Repeat("x", 1<<20)
	var largest int
	o := self()
	o.FS.Copy = func(dst io.Writer, r io.Reader) (int64, error) {
		return io.Copy(writerFunc(func(p []byte) (int, error) {
			largest = max(largest, len(p))
			return dst.Write(p)
		}), r)
	}
	src := embeddedSource(content)
	src.Range = nil // the copy from memory
	if _, err := Install(t.TempDir(), src, o); err != nil {
		t.Fatal(err)
	}
	if largest >= len(content) {
		t.Errorf("the program was written in one piece of %d bytes", largest)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
