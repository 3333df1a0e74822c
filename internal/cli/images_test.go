package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImagesListFollowsConfig(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
imageRepository: registry.example.internal/k8s
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, 0, "images", "list", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `registry.example.internal/k8s/etcd:3.7.0-0
registry.example.internal/k8s/kube-apiserver:v1.37.2
registry.example.internal/k8s/kube-controller-manager:v1.37.2
registry.example.internal/k8s/kube-scheduler:v1.37.2
registry.example.internal/k8s/kubestrap-csr-approver:v1.37.2
registry.example.internal/k8s/kube-proxy:v1.37.2
registry.example.internal/k8s/pause:3.10.2
`
	if out != want {
		t.Errorf("images list:\n%s\nwant:\n%s", out, want)
	}

	// With the approver disabled, its image is not needed.
	if err := os.WriteFile(cfg, []byte(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
imageRepository: registry.example.internal/k8s
---
apiVersion: kubestrap.io/v1alpha1
kind: KubestrapConfiguration
csrApprover:
  disabled: true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = runCLI(t, 0, "images", "list", "--config", cfg)
	if code != 0 || strings.Contains(out, "csr-approver") {
		t.Errorf("images list with csrApprover.disabled: exit %d, %s\n%s", code, stderr, out)
	}

	// Nor kube-proxy's with proxy.disabled, nor etcd's with an external etcd.
	if err := os.WriteFile(cfg, []byte(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
proxy:
  disabled: true
etcd:
  external:
    endpoints: ["https://10.0.0.5:2379"]
    caFile: /etc/etcd/ca.crt
    certFile: /etc/etcd/client.crt
    keyFile: /etc/etcd/client.key
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = runCLI(t, 0, "images", "list", "--config", cfg)
	if code != 0 || strings.Contains(out, "kube-proxy") || strings.Contains(out, "etcd") || !strings.Contains(out, "kube-apiserver") {
		t.Errorf("images list with proxy.disabled and external etcd: exit %d, %s\n%s", code, stderr, out)
	}
}

func TestImagesExportRefusesUnusableBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "kubestrap")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "images.tar")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"images", "export"}, "export needs -o FILE"},
		{[]string{"images", "export", "-o", archive, "--binary", script}, "CGO_ENABLED=0 go build"},
		{[]string{"images", "import", archive, "--binary", script}, "exclude each other"},
	} {
		_, stderr, code := runCLI(t, 0, tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want an error containing %q", tc.args, code, stderr, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a refused export left files behind: %v", entries)
	}
}
