package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kubestrap/kubestrap/internal/logx"
)

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	old := syscall.Umask(0o077)
	syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "file.conf")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{{"one", 0o644}, {"two", 0o600}} {
		if err := WriteFileAtomic(path, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(got) != tc.data || fi.Mode().Perm() != tc.perm {
			t.Errorf("content %q mode %v, want %q %v (%v)", got, fi.Mode().Perm(), tc.data, tc.perm, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "a")); fi.Mode().Perm() != DirMode {
		t.Errorf("parent dir mode %v", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestCreateFileExclusive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "key")
	created, err := CreateFileExclusive(path, []byte("first"), 0o600)
	if err != nil || !created {
		t.Fatalf("first create: %v %v", created, err)
	}
	created, err = CreateFileExclusive(path, []byte("second"), 0o600)
	if err != nil || created {
		t.Fatalf("second create replaced the file: %v %v", created, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("content %q, want the first writer's", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestWriteStreamAtomic: streamed content lands with the exact mode; a fill that fails leaves the
// old file and no temporary file behind.
func TestWriteStreamAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "bin", "prog")
	fill := func(s string) func(w io.Writer) error {
		return func(w io.Writer) error { _, err := io.Copy(w, strings.NewReader(s)); return err }
	}
	if err := WriteStreamAtomic(path, 0o755, fill("first")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	fi, err := os.Stat(path)
	if err != nil || string(got) != "first" || fi.Mode().Perm() != 0o755 {
		t.Fatalf("content %q mode %v (%v), want \"first\" 0755", got, fi.Mode(), err)
	}
	err = WriteStreamAtomic(path, 0o755, func(w io.Writer) error {
		fill("half")(w)
		return errors.New("does not verify")
	})
	if err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("a failed write changed the file: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestWriteStreamFromFile: a fill that copies from a file reaches os.File's ReadFrom (the kernel's
// copy_file_range, how progstore installs the component program), and the file written counts.
func TestWriteStreamFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var log strings.Builder
	path := filepath.Join(dir, "dst")
	err = WriteStreamAtomic(path, 0o755, func(w io.Writer) error {
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Errorf("the writer %T has no ReadFrom: a copy from a file goes through a buffer", w)
		}
		f.Seek(2, io.SeekStart)
		_, err := io.Copy(w, &io.LimitedReader{R: f, N: 5})
		return err
	}, Log(logx.New(&log, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "23456" {
		t.Errorf("content %q, want 23456", got)
	}
	if !strings.Contains(log.String(), "(mode 0755, 5 bytes)") {
		t.Errorf("log: %s", log.String())
	}
}
