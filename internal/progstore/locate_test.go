package progstore

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/kubestrap/kubestrap/internal/logx"
)

// mapFile writes content to a new file and maps it read-only and private into memory, as the
// kernel maps an executable's data: the returned string is content, held in the mapping.
func mapFile(t *testing.T, content []byte) (path, mapped string, m []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(path, content, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err = syscall.Mmap(int(f.Fd()), 0, len(content), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(m) })
	return path, unsafe.String(&m[0], len(m)), m
}

// pages is n pages of bytes that differ from page to page and within each.
func pages(n int) []byte {
	b := make([]byte, n*os.Getpagesize())
	for i := range b {
		b[i] = byte(i*7 + i/4096)
	}
	return b
}

func TestLocate(t *testing.T) {
	t.Parallel()
	content := pages(4)
	path, mapped, _ := mapFile(t, content)
	data := mapped[1000 : 3*4096+5] // inside the file, across pages
	f, off, err := Locate(data, path, "/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off != 1000 {
		t.Errorf("offset %d, want 1000", off)
	}

	// The same bytes in another file, or in memory no file backs, are not found there.
	other := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(other, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if f, _, err := Locate(data, other, "/proc/self/maps"); err == nil || !strings.Contains(err.Error(), "not mapped from "+other) {
		f.Close()
		t.Errorf("another file with the same bytes: err = %v", err)
	}
	heap := strings.Clone(data)
	if f, _, err := Locate(heap, path, "/proc/self/maps"); err == nil {
		f.Close()
		t.Error("data on the heap was located in the file")
	}
}

// TestLocateAcrossSplitMapping: the kernel lists a mapping whose parts have other permissions as
// several lines; a range across them is found when they continue each other.
func TestLocateAcrossSplitMapping(t *testing.T) {
	t.Parallel()
	page := os.Getpagesize()
	path, mapped, m := mapFile(t, pages(3))
	// A private mapping may become writable; the middle page is now a line of its own.
	if err := syscall.Mprotect(m[page:2*page], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	f, off, err := Locate(mapped[10:], path, "/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if off != 10 {
		t.Errorf("offset %d, want 10", off)
	}
}

// TestLocateChecksTheBytes: when the file's bytes at the mapping's offset are not those in memory
// (a page of the private mapping written to here; for an executable, a wrong offset), Locate
// refuses rather than have them installed under the hash of the bytes in memory.
func TestLocateChecksTheBytes(t *testing.T) {
	t.Parallel()
	path, mapped, m := mapFile(t, pages(2))
	if err := syscall.Mprotect(m, syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	m[len(m)-1] ^= 0xff // copy-on-write: memory differs from the file now
	if f, _, err := Locate(mapped, path, "/proc/self/maps"); err == nil || !strings.Contains(err.Error(), "differ") {
		f.Close()
		t.Fatalf("err = %v", err)
	}
}

// TestInstallFromFileRange: a source found as a file range is installed byte for byte, through
// the kernel copy (logged at -v 1); one that cannot be located is copied from memory and hashed.
func TestInstallFromFileRange(t *testing.T) {
	t.Parallel()
	path, mapped, _ := mapFile(t, pages(64))
	data := mapped[5:]
	e := &Embedded{Data: data, Sum: sha256.Sum256([]byte(data)), Components: names}
	src := e.source()
	src.Range = func() (*os.File, int64, int64, error) {
		f, off, err := Locate(data, path, "/proc/self/maps")
		return f, off, int64(len(data)), err
	}
	var log bytes.Buffer
	o := self()
	o.Log = logx.New(&log, 1)
	prog, err := Install(t.TempDir(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(prog); err != nil || string(got) != data {
		t.Errorf("%s: %d bytes (%v), want the %d located", prog, len(got), err, len(data))
	}
	if want := "copied the embedded component program from " + path + " (" + strconv.Itoa(len(data)) + " bytes at offset 5)"; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
	if err := Verify(filepath.Dir(prog), src, self()); err != nil {
		t.Error(err)
	}

	log.Reset()
	heap := &Embedded{Data: strings.Clone(data), Sum: e.Sum, Components: names} // /proc/self/exe does not map it
	prog2, err := Install(t.TempDir(), heap.source(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(prog2); string(got) != data {
		t.Errorf("%s: %d bytes, want %d", prog2, len(got), len(data))
	}
	if want := "copying the embedded component program from memory and hashing it: the data is not mapped from /proc/self/exe"; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
}

// TestInstallShortKernelCopy: a copy that ends early is refused and leaves nothing.
func TestInstallShortKernelCopy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := embeddedSource("program bytes") // a literal: in the test binary's file
	o := self()
	o.FS.Copy = func(dst io.Writer, r io.Reader) (int64, error) {
		return io.Copy(dst, io.LimitReader(r, 3))
	}
	_, err := Install(dir, src, o)
	if err == nil || !strings.Contains(err.Error(), "3 of 13 bytes copied") {
		t.Fatalf("err = %v", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("a refused copy left %v in %s", got, dir)
	}
}
