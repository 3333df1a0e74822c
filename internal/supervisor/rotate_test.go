package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotatingWriter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		existing string // content of the log before opening
		maxBytes int64
		maxFiles int
		writes   []string
		want     map[string]string // file suffix ("" for the log itself) -> content; others must not exist
	}{
		{
			name: "under the cap", maxBytes: 10, maxFiles: 2,
			writes: []string{"abc", "def"},
			want:   map[string]string{"": "abcdef"},
		},
		{
			name: "exactly the cap stays", maxBytes: 6, maxFiles: 2,
			writes: []string{"abc", "def"},
			want:   map[string]string{"": "abcdef"},
		},
		{
			name: "a write that does not fit rotates first", maxBytes: 8, maxFiles: 2,
			writes: []string{"aaaa\n", "bbbb\n", "cccc\n"},
			want:   map[string]string{"": "cccc\n", ".1": "bbbb\n", ".2": "aaaa\n"},
		},
		{
			name: "oldest beyond maxFiles is dropped", maxBytes: 4, maxFiles: 2,
			writes: []string{"1111", "2222", "3333", "4444"},
			want:   map[string]string{"": "4444", ".1": "3333", ".2": "2222"},
		},
		{
			name: "a write larger than the cap is split", maxBytes: 4, maxFiles: 3,
			writes: []string{"abcdefghij"},
			want:   map[string]string{"": "ij", ".1": "efgh", ".2": "abcd"},
		},
		{
			name: "several lines at once fill the file up to the last whole line", maxBytes: 10, maxFiles: 2,
			writes: []string{"aaa\nbbb\nccc\n"},
			want:   map[string]string{"": "ccc\n", ".1": "aaa\nbbb\n"},
		},
		{
			name: "a line that does not fit goes whole to the next file", maxBytes: 10, maxFiles: 2,
			writes: []string{"aaaaaa\n", "bbbbbb\ncc"},
			want:   map[string]string{"": "bbbbbb\ncc", ".1": "aaaaaa\n"},
		},
		{
			name: "no rotated files kept", maxBytes: 4, maxFiles: 0,
			writes: []string{"1111", "2222", "33"},
			want:   map[string]string{"": "33"},
		},
		{
			name: "appends to an existing log and counts it", existing: "old\n", maxBytes: 8, maxFiles: 1,
			writes: []string{"new\n", "next\n"},
			want:   map[string]string{"": "next\n", ".1": "old\nnew\n"},
		},
		{
			name: "an existing log over the cap is rotated on first write", existing: "0123456789", maxBytes: 4, maxFiles: 1,
			writes: []string{"ab"},
			want:   map[string]string{"": "ab", ".1": "0123456789"},
		},
		{
			name: "no cap", maxBytes: 0, maxFiles: 2,
			writes: []string{strings.Repeat("x", 100), "y"},
			want:   map[string]string{"": strings.Repeat("x", 100) + "y"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "c.log")
			if tc.existing != "" {
				if err := os.WriteFile(path, []byte(tc.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			w, err := NewRotatingWriter(path, tc.maxBytes, tc.maxFiles)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("late")); !errors.Is(err, os.ErrClosed) {
				t.Errorf("Write after Close: %v, want os.ErrClosed", err)
			}
			for _, suffix := range []string{"", ".1", ".2", ".3", ".4"} {
				data, err := os.ReadFile(path + suffix)
				want, ok := tc.want[suffix]
				switch {
				case !ok && err == nil:
					t.Errorf("%s exists with %q; want no such file", filepath.Base(path+suffix), data)
				case ok && err != nil:
					t.Errorf("%s: %v", filepath.Base(path+suffix), err)
				case ok && string(data) != want:
					t.Errorf("%s = %q, want %q", filepath.Base(path+suffix), data, want)
				}
			}
		})
	}
}

func TestRotatingWriterMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := NewRotatingWriter(path, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("abc"))
	for _, f := range []string{path, path + ".1"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}
