package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

var testHash = "sha256:" + strings.Repeat("ab", 32)

func TestLoadJoin(t *testing.T) {
	t.Parallel()
	file := `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    token: abcdef.0123456789abcdef
    apiServerEndpoint: 10.0.0.1:6443
    caCertHashes: [` + testHash + `]
---
apiVersion: kubestrap.io/v1alpha1
kind: KubestrapConfiguration
mode: local
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
`
	p := filepath.Join(t.TempDir(), "join.yaml")
	if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := LoadJoin(p, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if j.Join.CACertPath != "/etc/kubernetes/pki/ca.crt" {
		t.Errorf("caCertPath %q", j.Join.CACertPath)
	}
	if j.Join.Timeouts.Discovery.Duration != 5*time.Minute || j.Join.Timeouts.TLSBootstrap.Duration != 5*time.Minute {
		t.Errorf("timeouts %+v", j.Join.Timeouts)
	}
	if j.Join.Discovery.TLSBootstrapToken != "abcdef.0123456789abcdef" {
		t.Errorf("tlsBootstrapToken should default to the discovery token, got %q", j.Join.Discovery.TLSBootstrapToken)
	}
	if j.Join.NodeRegistration.Name != "cp-1.example.com" {
		t.Errorf("node name %q", j.Join.NodeRegistration.Name)
	}
	if j.Join.NodeRegistration.Taints != nil {
		t.Errorf("a worker gets no control-plane taint: %v", j.Join.NodeRegistration.Taints)
	}
	if j.Kubestrap.Mode != ModeLocal || j.Kubestrap.Supervisor.LogMaxFiles != 3 {
		t.Errorf("kubestrap settings %+v", j.Kubestrap)
	}
	if _, err := LoadJoin(filepath.Join(t.TempDir(), "nope.yaml"), testHost); err == nil {
		t.Error("a missing file must be an error")
	}
}

func TestLoadJoinFromFlags(t *testing.T) {
	t.Parallel()
	j, err := LoadJoinWith("", JoinOverrides{
		APIServerEndpoint: "cp.example.com:6443", Token: "abcdef.0123456789abcdef",
		CACertHashes: []string{testHash}, NodeName: "Worker-1", Mode: ModeLocal,
	}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	bt := j.Join.Discovery.BootstrapToken
	if bt == nil || bt.Token != "abcdef.0123456789abcdef" || bt.APIServerEndpoint != "cp.example.com:6443" || j.Join.Discovery.TLSBootstrapToken != bt.Token {
		t.Errorf("discovery %+v tls %q", bt, j.Join.Discovery.TLSBootstrapToken)
	}
	if j.Join.NodeRegistration.Name != "worker-1" || j.Kubestrap.Mode != ModeLocal {
		t.Errorf("name %q mode %q", j.Join.NodeRegistration.Name, j.Kubestrap.Mode)
	}

	f, err := LoadJoinWith("", JoinOverrides{DiscoveryFile: "file:///etc/kubernetes/discovery.conf", Token: "abcdef.0123456789abcdef"}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if f.Join.Discovery.BootstrapToken != nil || f.Join.Discovery.File.KubeConfigPath != "/etc/kubernetes/discovery.conf" || f.Join.Discovery.TLSBootstrapToken == "" {
		t.Errorf("file discovery: %+v", f.Join.Discovery)
	}
}

func TestJoinValidation(t *testing.T) {
	t.Parallel()
	base := func() *JoinConfig {
		j := DefaultJoin()
		j.Join.Discovery.BootstrapToken.UnsafeSkipCAVerification = false
		j.Join.Discovery.BootstrapToken.CACertHashes = []string{testHash}
		return j
	}
	for _, tc := range []struct {
		name   string
		mutate func(j *JoinConfig)
		want   string
	}{
		{"valid", func(j *JoinConfig) {}, ""},
		{"defaults with unsafe skip", func(j *JoinConfig) { *j = *DefaultJoin() }, ""},
		{"no discovery", func(j *JoinConfig) { j.Join.Discovery.BootstrapToken = nil }, "discovery: Required"},
		{"both discoveries", func(j *JoinConfig) { j.Join.Discovery.File = &FileDiscovery{KubeConfigPath: "/d.conf"} }, "mutually exclusive"},
		{"file discovery", func(j *JoinConfig) {
			j.Join.Discovery.BootstrapToken = nil
			j.Join.Discovery.File = &FileDiscovery{KubeConfigPath: "https://example.com/cluster-info"}
		}, ""},
		{"file discovery http URL", func(j *JoinConfig) {
			j.Join.Discovery.BootstrapToken = nil
			j.Join.Discovery.File = &FileDiscovery{KubeConfigPath: "http://example.com/x"}
		}, "discovery.file.kubeConfigPath"},
		{"file discovery empty", func(j *JoinConfig) {
			j.Join.Discovery.BootstrapToken = nil
			j.Join.Discovery.File = &FileDiscovery{}
		}, "discovery.file.kubeConfigPath: Required"},
		{"bad token", func(j *JoinConfig) { j.Join.Discovery.BootstrapToken.Token = "short.token" }, "discovery.bootstrapToken.token: Invalid value"},
		{"missing token", func(j *JoinConfig) { j.Join.Discovery.BootstrapToken.Token = "" }, "discovery.bootstrapToken.token: Required"},
		{"bad TLS bootstrap token", func(j *JoinConfig) { j.Join.Discovery.TLSBootstrapToken = "x" }, "discovery.tlsBootstrapToken"},
		{"hash without prefix", func(j *JoinConfig) {
			j.Join.Discovery.BootstrapToken.CACertHashes = []string{strings.Repeat("ab", 32)}
		}, "discovery.bootstrapToken.caCertHashes[0]"},
		{"hash too short", func(j *JoinConfig) { j.Join.Discovery.BootstrapToken.CACertHashes = []string{"sha256:abcd"} }, "caCertHashes[0]"},
		{"hash not hex", func(j *JoinConfig) {
			j.Join.Discovery.BootstrapToken.CACertHashes = []string{"sha256:" + strings.Repeat("zz", 32)}
		}, "caCertHashes[0]"},
		{"no hash and no skip", func(j *JoinConfig) { j.Join.Discovery.BootstrapToken.CACertHashes = nil }, "unsafeSkipCAVerification"},
		{"endpoint without port", func(j *JoinConfig) { j.Join.Discovery.BootstrapToken.APIServerEndpoint = "10.0.0.1" }, "discovery.bootstrapToken.apiServerEndpoint: Invalid value"},
		{"endpoint missing", func(j *JoinConfig) { j.Join.Discovery.BootstrapToken.APIServerEndpoint = "" }, "apiServerEndpoint: Required"},
		{"relative CA path", func(j *JoinConfig) { j.Join.CACertPath = "ca.crt" }, "caCertPath"},
		{"node name", func(j *JoinConfig) { j.Join.NodeRegistration.Name = "UPPER" }, "nodeRegistration.name"},
		{"control plane address", func(j *JoinConfig) {
			j.Join.ControlPlane = &JoinControlPlane{LocalAPIEndpoint: APIEndpoint{AdvertiseAddress: "x", BindPort: 6443}}
		}, "controlPlane.localAPIEndpoint.advertiseAddress"},
		{"mode", func(j *JoinConfig) { j.Kubestrap.Mode = "x" }, "KubestrapConfiguration.mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := base()
			tc.mutate(j)
			err := ValidateJoin(j)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestJoinControlPlaneDefaults(t *testing.T) {
	t.Parallel()
	file := `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
controlPlane: {}
discovery:
  bootstrapToken:
    token: abcdef.0123456789abcdef
    apiServerEndpoint: 10.0.0.1:6443
    unsafeSkipCAVerification: true
`
	p := filepath.Join(t.TempDir(), "join.yaml")
	if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	// A control-plane join without the certificate key has no way to get the shared
	// certificates: refused, saying where the key comes from...
	_, err := LoadJoin(p, testHost)
	if err == nil || !strings.Contains(err.Error(), "controlPlane.certificateKey: Required value: "+NoCertificateKey) {
		t.Errorf("a control-plane join without a certificate key was not refused clearly: %v", err)
	}
	// ...and the section is defaulted as kubeadm defaults it.
	j := &JoinConfig{}
	j.Join.ControlPlane = &JoinControlPlane{}
	SetJoinDefaults(j)
	if errs := ApplyJoinDynamicDefaults(j, testHost); len(errs) > 0 {
		t.Fatal(errs)
	}
	cp := j.Join.ControlPlane
	if cp.LocalAPIEndpoint.AdvertiseAddress != "192.168.0.10" || cp.LocalAPIEndpoint.BindPort != 6443 {
		t.Errorf("control-plane endpoint %+v", cp.LocalAPIEndpoint)
	}
	if len(j.Join.NodeRegistration.Taints) != 1 || j.Join.NodeRegistration.Taints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("a joining control plane gets the control-plane taint: %v", j.Join.NodeRegistration.Taints)
	}
}

func TestLoadJoinStrict(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "join.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    tokn: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadJoin(p, testHost)
	if err == nil || !strings.Contains(err.Error(), `document 1 (JoinConfiguration): unknown field "discovery.bootstrapToken.tokn"`) {
		t.Errorf("got %v", err)
	}
	if err := os.WriteFile(p, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadJoin(p, testHost); err == nil || !strings.Contains(err.Error(), "no JoinConfiguration") {
		t.Errorf("got %v", err)
	}
}

func TestLoadReset(t *testing.T) {
	t.Parallel()
	r, err := LoadReset("")
	if err != nil {
		t.Fatal(err)
	}
	if r.CertificatesDir != "/etc/kubernetes/pki" || r.Timeouts == nil || r.Timeouts.KubernetesAPICall.Duration != time.Minute {
		t.Errorf("reset defaults %+v", r)
	}
	p := filepath.Join(t.TempDir(), "reset.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ResetConfiguration\nunmountFlags: [MNT_FORCE, MNT_SOMETIMES]\ncertificatesDir: pki\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadReset(p)
	if err == nil || !strings.Contains(err.Error(), "unmountFlags[1]") || !strings.Contains(err.Error(), "certificatesDir") {
		t.Errorf("got %v", err)
	}
}

// A control-plane join's node configuration is the cluster's ClusterConfiguration with the
// join's node part, validated as init's; a cluster without controlPlaneEndpoint is refused.
func TestControlPlaneConfig(t *testing.T) {
	t.Parallel()
	j, err := LoadJoinWith("", JoinOverrides{
		APIServerEndpoint: "10.0.0.1:6443", Token: "abcdef.0123456789abcdef", UnsafeSkipCAVerification: true,
		NodeName: "cp2", ControlPlane: true, CertificateKey: strings.Repeat("ab", 32), AdvertiseAddress: "10.0.0.12", BindPort: 7443, Mode: ModeLocal,
	}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	cluster := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: lb.example:6443\nnetworking:\n  serviceSubnet: 10.97.0.0/16\n"
	cfg, err := ControlPlaneConfig(j, []byte(cluster), testHost)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.ControlPlaneEndpoint != "lb.example:6443" || cfg.Cluster.Networking.ServiceSubnet != "10.97.0.0/16" {
		t.Errorf("cluster part: endpoint %q, service subnet %q", cfg.Cluster.ControlPlaneEndpoint, cfg.Cluster.Networking.ServiceSubnet)
	}
	if cfg.NodeName() != "cp2" || cfg.AdvertiseAddress() != "10.0.0.12" || cfg.BindPort() != 7443 || cfg.Kubestrap.Mode != ModeLocal {
		t.Errorf("node part: name %q, address %q, port %d, mode %q", cfg.NodeName(), cfg.AdvertiseAddress(), cfg.BindPort(), cfg.Kubestrap.Mode)
	}
	if len(cfg.Init.NodeRegistration.Taints) != 1 || cfg.Init.NodeRegistration.Taints[0].Key != ControlPlaneTaintKey {
		t.Errorf("taints %v, want the control-plane taint", cfg.Init.NodeRegistration.Taints)
	}
	_, err = ControlPlaneConfig(j, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"), testHost)
	if err == nil || err.Error() != NoControlPlaneEndpoint {
		t.Errorf("err %v, want NoControlPlaneEndpoint", err)
	}
	_, err = ControlPlaneConfig(j, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: lb.example:6443\nnetworking:\n  serviceSubnet: nope\n"), testHost)
	if err == nil || !strings.Contains(err.Error(), "serviceSubnet") {
		t.Errorf("err %v, want the cluster's invalid field named", err)
	}
}
