package kubelet

import (
	"os"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// userConfig loads an init configuration whose file carries a KubeletConfiguration document,
// the way init reads it.
func userConfig(t *testing.T, kubeletDoc string) *config.Config {
	t.Helper()
	file := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 192.168.0.10\nnodeRegistration:\n  name: node1\n" +
		"---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" + kubeletDoc
	cfg, err := config.LoadInitData("kubestrap.yaml", []byte(file), config.Overrides{}, config.SystemHost{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The KubeletConfiguration of the config file is merged over kubestrap's defaults: what it sets
// wins, down to nested fields, and every default it does not mention stays.
func TestUserKubeletConfigurationMerged(t *testing.T) {
	t.Parallel()
	cfg := userConfig(t, "maxPods: 42\ncgroupDriver: cgroupfs\nauthentication:\n  webhook:\n    cacheTTL: 30s\nclusterDNS: [10.96.0.53]\n")
	kc, err := Configuration(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if kc.MaxPods != 42 || kc.CgroupDriver != "cgroupfs" || kc.Authentication.Webhook.CacheTTL.Duration.String() != "30s" ||
		len(kc.ClusterDNS) != 1 || kc.ClusterDNS[0] != "10.96.0.53" {
		t.Errorf("user fields lost: maxPods %d, cgroupDriver %q, webhook cacheTTL %v, clusterDNS %v",
			kc.MaxPods, kc.CgroupDriver, kc.Authentication.Webhook.CacheTTL, kc.ClusterDNS)
	}
	def, err := Configuration(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Siblings of a user field inside the same object keep kubestrap's values.
	if kc.Authentication.Webhook.Enabled == nil || !*kc.Authentication.Webhook.Enabled ||
		kc.Authentication.Anonymous.Enabled == nil || *kc.Authentication.Anonymous.Enabled ||
		kc.Authentication.X509.ClientCAFile != def.Authentication.X509.ClientCAFile ||
		kc.HealthzBindAddress != "127.0.0.1" || *kc.HealthzPort != 10248 || !kc.RotateCertificates ||
		kc.StaticPodPath != def.StaticPodPath || kc.ClusterDomain != "cluster.local" || kc.Authorization.Mode != def.Authorization.Mode {
		t.Errorf("kubestrap defaults lost in the merge: %+v", kc)
	}
	if kc.APIVersion != "kubelet.config.k8s.io/v1beta1" || kc.Kind != "KubeletConfiguration" {
		t.Errorf("type meta %+v", kc.TypeMeta)
	}
	// Without a document the defaults are unchanged.
	if def.MaxPods != 0 || def.CgroupDriver != "systemd" {
		t.Errorf("defaults: maxPods %d, cgroupDriver %q", def.MaxPods, def.CgroupDriver)
	}
}

// What a joining node writes to /var/lib/kubelet/config.yaml is the uploaded document: the user's
// fields survive the trip through the ConfigMap text, next to kubestrap's defaults.
func TestUserKubeletConfigurationReachesNodeConfig(t *testing.T) {
	t.Parallel()
	kc, err := Configuration(userConfig(t, "maxPods: 42\ncgroupDriver: cgroupfs\n"))
	if err != nil {
		t.Fatal(err)
	}
	uploaded, err := Marshal(kc) // the kubelet-config ConfigMap's data
	if err != nil {
		t.Fatal(err)
	}
	fromCluster, err := Unmarshal(uploaded) // what join reads back
	if err != nil {
		t.Fatal(err)
	}
	p := paths.MustUnder(t.TempDir())
	flags := NodeFlags{NodeName: "worker-1", Hostname: "worker-1"}
	if err := WriteNodeFiles(p, fromCluster, flags, Options{Kubelet: "/usr/bin/kubelet", FS: rootOwned}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p.KubeletConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"maxPods: 42\n", "cgroupDriver: cgroupfs\n", "healthzBindAddress: 127.0.0.1\n", "rotateCertificates: true\n", "clientCAFile: " + p.Host("/etc/kubernetes/pki/ca.crt") + "\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, b)
		}
	}
}
