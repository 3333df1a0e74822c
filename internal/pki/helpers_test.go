package pki

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// t0 is the fixed clock of the tests: certificates issued "now" are then byte-for-byte
// predictable in their dates, which the golden files rely on.
var t0 = time.Date(2030, time.March, 1, 12, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// testConfig is the shared defaulted configuration (configtest) for this package's node.
func testConfig() *config.Config { return configtest.Init("192.168.0.10", "node1") }

// allFiles are the 22 files of a full PKI with local etcd, relative to the certificates dir.
var allFiles = []string{
	"ca.crt", "ca.key",
	"apiserver.crt", "apiserver.key",
	"apiserver-kubelet-client.crt", "apiserver-kubelet-client.key",
	"front-proxy-ca.crt", "front-proxy-ca.key",
	"front-proxy-client.crt", "front-proxy-client.key",
	"etcd/ca.crt", "etcd/ca.key",
	"etcd/server.crt", "etcd/server.key",
	"etcd/peer.crt", "etcd/peer.key",
	"etcd/healthcheck-client.crt", "etcd/healthcheck-client.key",
	"apiserver-etcd-client.crt", "apiserver-etcd-client.key",
	"sa.key", "sa.pub",
}

func certDir(p paths.Paths, cfg *config.Config) string { return p.CertDir(cfg.Cluster.CertificatesDir) }

// newPKI creates a full PKI under a fresh root at t0.
func newPKI(t *testing.T, cfg *config.Config) (paths.Paths, *bytes.Buffer) {
	t.Helper()
	p := paths.MustUnder(t.TempDir())
	var log bytes.Buffer
	if err := EnsureCerts(cfg, p, nil, Options{Log: &log, Now: fixedClock(t0)}); err != nil {
		t.Fatalf("EnsureCerts: %v", err)
	}
	return p, &log
}

// snapshot records every regular file under root with its content and modification time.
type fileState struct {
	data  []byte
	mtime time.Time
	mode  fs.FileMode
}

func snapshot(t *testing.T, root string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out[rel] = fileState{data: data, mtime: fi.ModTime(), mode: fi.Mode()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertUnchanged(t *testing.T, before, after map[string]fileState) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("file count changed: %d -> %d", len(before), len(after))
	}
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s disappeared", name)
		case !bytes.Equal(a.data, b.data):
			t.Errorf("%s content changed", name)
		case !a.mtime.Equal(b.mtime):
			t.Errorf("%s was rewritten (mtime changed)", name)
		}
	}
}

// golden compares got with testdata/pki/<name>, rewriting it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "pki", name)
	golden.Check(t, path, got)
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("missing %q in:\n%s", sub, s)
		}
	}
}
