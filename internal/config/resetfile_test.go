package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadResetFile(t *testing.T) {
	const resetDoc = `apiVersion: kubeadm.k8s.io/v1beta4
kind: ResetConfiguration
certificatesDir: /srv/reset-pki
force: true
skipPhases: [cleanup-node]
`
	const clusterDoc = `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
certificatesDir: /srv/init-pki
etcd:
  local:
    dataDir: /srv/etcd
`
	const joinDoc = `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: 10.0.0.1:6443
    token: abcdef.0123456789abcdef
    unsafeSkipCAVerification: true
`
	for _, tc := range []struct {
		name                 string
		file                 string
		wantReset, wantInit  bool
		certDir, etcdDataDir string
	}{
		{"reset and cluster", resetDoc + "---\n" + clusterDoc, true, true, "/srv/reset-pki", "/srv/etcd"},
		{"reset only", resetDoc, true, false, "/srv/reset-pki", ""},
		{"cluster only", clusterDoc, false, true, "/srv/init-pki", "/srv/etcd"},
		{"neither", joinDoc, false, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cfg.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			rc, cluster, err := LoadResetFile(path, testHost)
			if err != nil {
				t.Fatal(err)
			}
			if (rc != nil) != tc.wantReset || (cluster != nil) != tc.wantInit {
				t.Fatalf("reset config %v, init config %v; want %v, %v", rc != nil, cluster != nil, tc.wantReset, tc.wantInit)
			}
			var certDir, dataDir string
			if rc != nil {
				certDir = rc.CertificatesDir
				if !rc.Force || len(rc.SkipPhases) != 1 || rc.SkipPhases[0] != "cleanup-node" {
					t.Errorf("ResetConfiguration not decoded: %+v", rc)
				}
			}
			if cluster != nil {
				if certDir == "" {
					certDir = cluster.Cluster.CertificatesDir
				}
				if l := cluster.Cluster.Etcd.Local; l != nil {
					dataDir = l.DataDir
				}
			}
			if certDir != tc.certDir || dataDir != tc.etcdDataDir {
				t.Errorf("certificatesDir %q, etcd dataDir %q; want %q, %q", certDir, dataDir, tc.certDir, tc.etcdDataDir)
			}
		})
	}
}

func TestLoadResetFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadResetFile(filepath.Join(dir, "missing.yaml"), testHost); err == nil || !strings.Contains(err.Error(), "reading the config file") {
		t.Errorf("missing file: err %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ResetConfiguration\nforce: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadResetFile(bad, testHost); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("undecodable ResetConfiguration: err %v, want one naming the file", err)
	}
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("apiVersion: v9\nkind: Nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadResetFile(unknown, testHost); err == nil || !strings.Contains(err.Error(), "unknown.yaml") {
		t.Errorf("unknown document: err %v, want one naming the file", err)
	}
}
