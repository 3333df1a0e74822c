package join

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// snapshot lists everything under root with its type, mode and content (or link target): two
// snapshots are equal only when the trees are, byte for byte and mode for mode.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
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

// TestJoinFailureAfterNodeFilesRestoresRootExactly: a join that fails after kubelet-start wrote
// the node files (the CA, bootstrap-kubelet.conf and everything kubelet.WriteNodeFiles writes)
// leaves the root exactly as it found it — on an empty root, and on a root that already holds a
// different version of every file a join writes (content and mode restored). The list of files
// comes from a successful join, not from a list kept by hand, so a file that a later change adds
// to any join phase is covered, and one written without the join's writer makes this fail.
func TestJoinFailureAfterNodeFilesRestoresRootExactly(t *testing.T) {
	t.Parallel()
	// What a join writes: the regular files of a successful one.
	done := t.TempDir()
	if err := runAll(context.Background(), newTestJoin(t, done, newTestCluster(t), nil)); err != nil {
		t.Fatal(err)
	}
	var written []string
	filepath.WalkDir(done, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(done, path)
			written = append(written, rel)
		}
		return err
	})
	if len(written) < 7 {
		t.Fatalf("a join wrote only %v", written)
	}

	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, root string)
	}{
		{"empty root", func(*testing.T, string) {}},
		{"root with an earlier installation's files", func(t *testing.T, root string) {
			for _, rel := range written {
				path := filepath.Join(root, rel)
				if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte("earlier "+rel+"\n"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			tc.prepare(t, root)
			before := snapshot(t, root)
			c := newTestCluster(t)
			c.deny = true // the TLS bootstrap, after kubelet-start, fails
			j := newTestJoin(t, root, c, nil)
			ctx := context.Background()
			// The phases after preflight, which would refuse the earlier files: as
			// "join phase kubelet-start" and "join phase tls-bootstrap" run them.
			if err := j.KubeletStart(ctx); err != nil {
				t.Fatalf("kubelet-start: %v", err)
			}
			if snapshot(t, root) == before {
				t.Fatal("kubelet-start changed nothing; the test would prove nothing")
			}
			if err := j.TLSBootstrap(ctx); err == nil || !strings.Contains(err.Error(), "denied") {
				t.Fatalf("tls-bootstrap: err = %v, want the denied CSR", err)
			}
			if after := snapshot(t, root); after != before {
				t.Errorf("the failed join did not restore the root:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}
