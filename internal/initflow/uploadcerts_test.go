package initflow

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/copycerts"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// TestUploadCertsUnderRootDir: the upload-certs phase reads the shared files from the root's
// certificates dir and the external etcd files named in the configuration under the root dir
// too (as the apiserver's --etcd-cafile does), and the key it prints decrypts them.
func TestUploadCertsUnderRootDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := paths.MustUnder(root)
	write := func(rel, content string) {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub"} {
		write("etc/kubernetes/pki/"+n, n)
	}
	write("etc/etcd/ca.pem", "external CA")
	cfg := testConfig(t)
	cfg.Cluster.Etcd.Local = nil
	cfg.Cluster.Etcd.External = &config.ExternalEtcd{Endpoints: []string{"https://10.0.0.9:2379"}, CAFile: "/etc/etcd/ca.pem"}
	var out, log bytes.Buffer
	d, err := New(cfg, p, config.ModeLocal, Options{Out: &out, Log: &log, UploadCerts: true})
	if err != nil {
		t.Fatal(err)
	}
	fakeClient := fake.NewClientset()
	client := kubeclienttest.Wrap(fakeClient)
	d.client = client
	if err := runUploadCerts(context.Background(), d); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	key := strings.TrimSpace(out.String())
	k, err := copycerts.ParseKey(key)
	if err != nil {
		t.Fatalf("the phase printed %q: %v", out.String(), err)
	}
	dst := t.TempDir()
	if err := copycerts.Download(context.Background(), client, filepath.Join(dst, "pki"), k, fsutil.NewDisk(nil),
		copycerts.ExternalEtcd(filepath.Join(dst, "etcd-ca.pem"), "", "")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "etcd-ca.pem")); string(got) != "external CA" {
		t.Errorf("external etcd CA = %q, want the file under the root dir", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "pki", "sa.key")); string(got) != "sa.key" {
		t.Errorf("sa.key = %q", got)
	}
	if cfg.Cluster.Etcd.External.CAFile != "/etc/etcd/ca.pem" {
		t.Errorf("the phase changed the run's configuration: %s", cfg.Cluster.Etcd.External.CAFile)
	}
}
