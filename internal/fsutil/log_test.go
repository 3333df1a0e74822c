package fsutil

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/logx"
)

func TestWriteIsReportedAtLevel1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := []byte("-----BEGIN EC PRIVATE KEY-----\nnot-for-logs\n")
	for _, tc := range []struct {
		level int
		want  string
	}{
		{0, ""},
		{1, "[v1] wrote " + filepath.Join(dir, "1", "ca.key") + " (mode 0600, 44 bytes)\n"},
		{2, "[v1] wrote " + filepath.Join(dir, "2", "ca.key") + " (mode 0600, 44 bytes)\n"},
	} {
		var buf bytes.Buffer
		path := filepath.Join(dir, string(rune('0'+tc.level)), "ca.key")
		if err := WriteFileAtomic(path, secret, 0o600, Log(logx.New(&buf, tc.level))); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("level %d: got %q, want %q", tc.level, buf.String(), tc.want)
		}
		if strings.Contains(buf.String(), "not-for-logs") {
			t.Errorf("the log shows the file's content: %q", buf.String())
		}
	}
}

func TestCreateExclusiveReportsOnlyWhatItCreated(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "encryption.yaml")
	var buf bytes.Buffer
	log := Log(logx.New(&buf, 1))
	if created, err := CreateFileExclusive(path, []byte("first"), 0o600, log); err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	if created, err := CreateFileExclusive(path, []byte("second"), 0o600, log); err != nil || created {
		t.Fatalf("second: created=%v err=%v", created, err)
	}
	if want := "[v1] wrote " + path + " (mode 0600, 5 bytes)\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

// TestDryRunWriterReportsAtLevel1: a dry run's writes are reported at -v 1 like real ones, marked
// as such, besides the "[dryrun]" line every level shows.
func TestDryRunWriterReportsAtLevel1(t *testing.T) {
	t.Parallel()
	var v0, v1 bytes.Buffer
	NewDryRun(logx.New(&v0, 0)).WriteFile("/etc/kubernetes/admin.conf", []byte("abc"), 0o600)
	NewDryRun(logx.New(&v1, 1)).WriteFile("/etc/kubernetes/admin.conf", []byte("abc"), 0o600)
	if want := "[dryrun] Would write file /etc/kubernetes/admin.conf\n"; v0.String() != want {
		t.Errorf("level 0: got %q, want %q", v0.String(), want)
	}
	if want := "[dryrun] Would write file /etc/kubernetes/admin.conf\n[v1] would write /etc/kubernetes/admin.conf (mode 0600, 3 bytes; dry run)\n"; v1.String() != want {
		t.Errorf("got %q, want %q", v1.String(), want)
	}
}
