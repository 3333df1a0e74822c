package paths

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		root    string
		uid     int
		wantErr string
	}{
		{"temp dir as a user", dir, 1000, ""},
		{"real root as root", "/", 0, ""},
		{"empty means /", "", 0, ""},
		{"real root as a user", "/", 1000, "run as root or pass --root-dir"},
		{"a file", file, 0, "is not a directory"},
		{"missing", filepath.Join(dir, "missing"), 0, "does not exist"},
	}
	for _, tc := range tests {
		p, err := New(tc.root, tc.uid)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
		if tc.name == "real root as a user" && !errors.Is(err, ErrNeedRoot) {
			t.Errorf("not ErrNeedRoot: %v", err)
		}
		_ = p
	}
}

// TestLayout pins kubeadm's layout under a root: every path is under the root, and under "/" the
// paths are exactly kubeadm's.
func TestLayout(t *testing.T) {
	t.Parallel()
	for _, root := range []string{"/", "/tmp/r"} {
		p := MustUnder(root)
		j := func(s string) string { return filepath.Join(root, s) }
		want := map[string]string{
			p.CertDir(""):                    j("/etc/kubernetes/pki"),
			p.CertDir("/srv/pki"):            j("/srv/pki"),
			p.Kubeconfig("admin.conf"):       j("/etc/kubernetes/admin.conf"),
			p.Manifest("etcd"):               j("/etc/kubernetes/manifests/etcd.yaml"),
			p.EtcdDataDir(""):                j("/var/lib/etcd"),
			p.KubeletConfig():                j("/var/lib/kubelet/config.yaml"),
			p.KubeletFlagsEnv():              j("/var/lib/kubelet/kubeadm-flags.env"),
			p.KubeletClientCert():            j("/var/lib/kubelet/pki/kubelet-client-current.pem"),
			p.SystemdUnit("etcd.service"):    j("/etc/systemd/system/etcd.service"),
			p.PidFile("etcd"):                j("/run/kubestrap/etcd.pid"),
			p.ComponentLog("kube-apiserver"): j("/var/log/kubestrap/kube-apiserver.log"),
			p.ComponentBinary("etcd"):        j("/var/lib/kubestrap/bin/etcd"),
			p.TmpDir():                       j("/etc/kubernetes/tmp"),
		}
		for got, w := range want {
			if got != w {
				t.Errorf("root %s: got %s, want %s", root, got, w)
			}
			if !p.Contains(got) {
				t.Errorf("root %s: %s is not contained", root, got)
			}
		}
	}
}

func TestHostCannotEscape(t *testing.T) {
	t.Parallel()
	p := MustUnder("/tmp/r")
	for _, in := range []string{"../../etc/passwd", "/../../etc/passwd", "etc/../../x"} {
		if got := p.Host(in); !p.Contains(got) {
			t.Errorf("Host(%q) = %s escapes the root", in, got)
		}
	}
	if p.Contains("/tmp/rx/file") || p.Contains("/tmp") || !p.Contains("/tmp/r") {
		t.Errorf("Contains misjudges siblings or parents")
	}
}
