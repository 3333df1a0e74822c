package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/testfixture"
)

// The files kubeadm prints are accepted as they are, with only the address, the node name and
// the version filled in, and each loads for its command; the component configs are kept.
func TestKubeadmDefaultFiles(t *testing.T) {
	t.Parallel()
	initFile := testfixture.KubeadmFile(t, "init-defaults.yaml",
		"advertiseAddress: 1.2.3.4", "advertiseAddress: 192.168.0.10",
		"  name: node\n", "  name: cp-1\n",
		"kubernetesVersion: 1.37.0", "kubernetesVersion: v1.37.2")
	joinFile := testfixture.KubeadmFile(t, "join-defaults.yaml",
		"apiServerEndpoint: kube-apiserver:6443", "apiServerEndpoint: 192.168.0.10:6443",
		"  name: vm\n", "  name: worker-1\n")
	resetFile := testfixture.KubeadmFile(t, "reset-defaults.yaml")

	for file, want := range map[string][]string{
		initFile:  {KindInit, KindCluster, KindKubeletConfig, KindKubeProxyConfig},
		joinFile:  {KindJoin},
		resetFile: {KindReset},
	} {
		kinds, err := ValidateFile(file, testHost, PhaseNames{})
		if err != nil || !reflect.DeepEqual(kinds, want) {
			t.Errorf("config validate %s: kinds %v, err %v; want %v", filepath.Base(file), kinds, err, want)
		}
	}

	c, err := LoadInit(initFile, Overrides{}, testHost)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if c.Init.NodeRegistration.Name != "cp-1" || c.AdvertiseAddress() != "192.168.0.10" || c.Cluster.KubernetesVersion != "v1.37.2" {
		t.Errorf("init: name %q, address %q, version %q", c.Init.NodeRegistration.Name, c.AdvertiseAddress(), c.Cluster.KubernetesVersion)
	}
	// kubeadm's own choices in the file are honoured, not replaced by kubestrap's defaults.
	if c.Cluster.EncryptionAlgorithm != AlgorithmRSA2048 || c.Init.NodeRegistration.CRISocket != "unix:///var/run/containerd/containerd.sock" {
		t.Errorf("init: encryptionAlgorithm %q, criSocket %q", c.Cluster.EncryptionAlgorithm, c.Init.NodeRegistration.CRISocket)
	}
	if !strings.Contains(string(c.KubeletConfiguration), `"cgroupDriver":"systemd"`) {
		t.Errorf("the KubeletConfiguration document was not kept: %s", c.KubeletConfiguration)
	}
	if !strings.Contains(string(c.KubeProxyConfiguration), `"mode":"iptables"`) {
		t.Errorf("the KubeProxyConfiguration document was not kept: %s", c.KubeProxyConfiguration)
	}
	// And they survive a round trip through the effective configuration kubestrap prints.
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadInitData("marshalled", b, Overrides{}, testHost)
	if err != nil {
		t.Fatalf("the marshalled configuration does not load: %v", err)
	}
	if !reflect.DeepEqual(again.KubeletConfiguration, c.KubeletConfiguration) || !reflect.DeepEqual(again.KubeProxyConfiguration, c.KubeProxyConfiguration) {
		t.Errorf("component configs changed through Marshal:\n%s", b)
	}

	j, err := LoadJoin(joinFile, testHost)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if j.Join.NodeRegistration.Name != "worker-1" || j.Join.Discovery.BootstrapToken.APIServerEndpoint != "192.168.0.10:6443" {
		t.Errorf("join: %+v", j.Join)
	}
	if _, err := LoadReset(resetFile); err != nil {
		t.Errorf("reset: %v", err)
	}
}

// Component configs are decoded strictly: a misspelt field in either is an error naming it, as
// in kubeadm's own documents.
func TestComponentConfigUnknownFields(t *testing.T) {
	t.Parallel()
	const cluster = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
	for _, tc := range []struct{ doc, want string }{
		{"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPodz: 42\n", `(KubeletConfiguration): unknown field "maxPodz"`},
		{"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  x509:\n    clientCAFiel: /ca.crt\n", `unknown field "authentication.x509.clientCAFiel"`},
		{"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: many\n", `(KubeletConfiguration)`},
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmodee: ipvs\n", `(KubeProxyConfiguration): unknown field "modee"`},
	} {
		_, err := LoadInitData("f.yaml", []byte(cluster+"---\n"+tc.doc), Overrides{}, testHost)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.doc, err, tc.want)
		}
	}
	// A valid document is kept exactly as the user wrote it, defaults not filled in.
	c, err := LoadInitData("f.yaml", []byte(cluster+"---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 42\n"), Overrides{}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.KubeletConfiguration), `{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","maxPods":42}`; got != want {
		t.Errorf("kept %s, want %s", got, want)
	}
}

// skipPhases is checked by config validate against the names the command's workflow accepts.
func TestValidateFileSkipPhases(t *testing.T) {
	t.Parallel()
	phases := PhaseNames{Init: []string{"preflight", "addon/coredns"}, Join: []string{"preflight"}, Reset: []string{"cleanup-node"}}
	ok := testfixture.KubeadmFile(t, "init-defaults.yaml", "timeouts:", "skipPhases: [addon/coredns, preflight]\ntimeouts:")
	if _, err := ValidateFile(ok, testHost, phases); err != nil {
		t.Errorf("known phases refused: %v", err)
	}
	for _, tc := range []struct {
		file, want string
	}{
		{testfixture.KubeadmFile(t, "init-defaults.yaml", "timeouts:", "skipPhases: [preflight, addons]\ntimeouts:"),
			`skipPhases[1]: Unsupported value: "addons": supported values: "preflight", "addon/coredns"`},
		{testfixture.KubeadmFile(t, "join-defaults.yaml", "timeouts:", "skipPhases: [discovery]\ntimeouts:"),
			`skipPhases[0]: Unsupported value: "discovery": supported values: "preflight"`},
		{testfixture.KubeadmFile(t, "reset-defaults.yaml", "timeouts:", "skipPhases: [cleanup]\ntimeouts:"),
			`skipPhases[0]: Unsupported value: "cleanup": supported values: "cleanup-node"`},
	} {
		if _, err := ValidateFile(tc.file, testHost, phases); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", filepath.Base(tc.file), err, tc.want)
		}
	}
}
