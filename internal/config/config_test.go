package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/golden"
)

const goldenDir = "../../testdata/config"

// fakeHost answers dynamic defaulting without looking at the machine.
type fakeHost struct {
	name    string
	nameErr error
	ip      string
	ipErr   error
}

func (h fakeHost) Hostname() (string, error) { return h.name, h.nameErr }
func (h fakeHost) DefaultIPv4() (net.IP, error) {
	if h.ipErr != nil {
		return nil, h.ipErr
	}
	return net.ParseIP(h.ip), nil
}

var testHost = fakeHost{name: "CP-1.Example.COM", ip: "192.168.0.10"}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join(goldenDir, name)
	golden.Check(t, p, got)
}

func TestPrintDefaultsGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file    string
		marshal func() ([]byte, error)
	}{
		{"init-defaults.yaml", func() ([]byte, error) { return Marshal(DefaultInit()) }},
		{"join-defaults.yaml", func() ([]byte, error) { return MarshalJoin(DefaultJoin()) }},
		{"reset-defaults.yaml", func() ([]byte, error) { return MarshalReset(DefaultReset()) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			b, err := tc.marshal()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.file, b)
		})
	}
}

// kubeadmInitDefaults is `kubeadm config print init-defaults` of kubeadm v1.37 (reference §8),
// with kubernetesVersion set to the bundled patch release.
const kubeadmInitDefaults = `apiVersion: kubeadm.k8s.io/v1beta4
bootstrapTokens:
- groups:
  - system:bootstrappers:kubeadm:default-node-token
  token: abcdef.0123456789abcdef
  ttl: 24h0m0s
  usages:
  - signing
  - authentication
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 1.2.3.4
  bindPort: 6443
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  imagePullPolicy: IfNotPresent
  imagePullSerial: true
  name: node
  taints: null
timeouts:
  controlPlaneComponentHealthCheck: 4m0s
  discovery: 5m0s
  etcdAPICall: 2m0s
  kubeletHealthCheck: 4m0s
  kubernetesAPICall: 1m0s
  tlsBootstrap: 5m0s
  upgradeManifests: 5m0s
---
apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
caCertificateValidityPeriod: 87600h0m0s
certificateValidityPeriod: 8760h0m0s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controllerManager: {}
dns: {}
encryptionAlgorithm: RSA-2048
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
networking:
  dnsDomain: cluster.local
  serviceSubnet: 10.96.0.0/12
proxy: {}
scheduler: {}
`

func TestDefaultsMatchKubeadm(t *testing.T) {
	t.Parallel()
	b, err := Marshal(DefaultInit())
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "---\n")
	if len(docs) != 3 {
		t.Fatalf("want 3 documents, got %d:\n%s", len(docs), b)
	}
	// The one intended difference from kubeadm.
	want := strings.Replace(kubeadmInitDefaults, "encryptionAlgorithm: RSA-2048", "encryptionAlgorithm: ECDSA-P256", 1)
	if got := docs[0] + "---\n" + docs[1]; got != want {
		t.Errorf("init defaults differ from kubeadm's:\n--- got\n%s\n--- want\n%s", got, want)
	}
	var ks KubestrapConfiguration
	if err := yaml.UnmarshalStrict([]byte(docs[2]), &ks); err != nil {
		t.Fatal(err)
	}
	wantKS := KubestrapConfiguration{
		TypeMeta:          metav1.TypeMeta{APIVersion: KubestrapAPIVersion, Kind: KindKubestrap},
		Mode:              ModeAuto,
		Etcd:              EtcdPorts{ClientPort: 2379, PeerPort: 2380, MetricsPort: 2381},
		ControllerManager: ComponentPort{SecurePort: 10257},
		Scheduler:         ComponentPort{SecurePort: 10259},
		Supervisor: Supervisor{
			MaxRestartBackoff: &metav1.Duration{Duration: 30 * time.Second},
			StopTimeout:       &metav1.Duration{Duration: 10 * time.Second},
			LogMaxSizeMB:      10,
			LogMaxFiles:       3,
		},
		CSRApprover: CSRApprover{HealthPort: 10261},
	}
	if !reflect.DeepEqual(ks, wantKS) {
		t.Errorf("KubestrapConfiguration defaults:\n got %+v\nwant %+v", ks, wantKS)
	}
}

func TestPrintedDefaultsValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := Marshal(DefaultInit())
	if err != nil {
		t.Fatal(err)
	}
	j, err := MarshalJoin(DefaultJoin())
	if err != nil {
		t.Fatal(err)
	}
	r, err := MarshalReset(DefaultReset())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"init.yaml": b, "join.yaml": j, "reset.yaml": r} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ValidateFile(p, testHost, PhaseNames{}); err != nil {
			t.Errorf("%s: printed defaults do not validate: %v", name, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b, err := Marshal(DefaultInit())
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadInitData("defaults", b, Overrides{}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultInit()
	want.Init.TypeMeta = metav1.TypeMeta{APIVersion: KubeadmAPIVersion, Kind: KindInit}
	want.Cluster.TypeMeta = metav1.TypeMeta{APIVersion: KubeadmAPIVersion, Kind: KindCluster}
	want.Kubestrap.TypeMeta = metav1.TypeMeta{APIVersion: KubestrapAPIVersion, Kind: KindKubestrap}
	// The only dynamic default the printed file leaves open: taints: null means "control plane".
	want.Init.NodeRegistration.Taints = []Taint{{Key: ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule}}
	if !reflect.DeepEqual(got, want) {
		g, _ := Marshal(got)
		w, _ := Marshal(want)
		t.Errorf("round trip changed the configuration:\n--- got\n%s\n--- want\n%s", g, w)
	}
	// And what init stores in the kubeadm-config ConfigMap reads back as the same cluster.
	cb, err := MarshalCluster(got)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(cb), "kind:"); n != 1 || !strings.Contains(string(cb), "kind: ClusterConfiguration") {
		t.Fatalf("MarshalCluster should hold only the ClusterConfiguration:\n%s", cb)
	}
	again, err := LoadInitData("configmap", cb, Overrides{}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Cluster, got.Cluster) {
		t.Errorf("ClusterConfiguration changed through MarshalCluster: got %+v, want %+v", again.Cluster, got.Cluster)
	}
}

func TestLoadInitWithoutFile(t *testing.T) {
	t.Parallel()
	c, err := LoadInit("", Overrides{}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName() != "cp-1.example.com" || c.AdvertiseAddress() != "192.168.0.10" {
		t.Errorf("dynamic defaults: name %q address %q", c.NodeName(), c.AdvertiseAddress())
	}
	if len(c.Init.BootstrapTokens) != 1 || c.Init.BootstrapTokens[0].Token != "" {
		t.Errorf("LoadInit must leave the token to EnsureBootstrapToken, got %+v", c.Init.BootstrapTokens)
	}
	if c.Cluster.EncryptionAlgorithm != AlgorithmECDSAP256 || c.Cluster.KubernetesVersion != BundledKubernetesVersion {
		t.Errorf("static defaults missing: %+v", c.Cluster)
	}
	if _, err := LoadInit(filepath.Join(t.TempDir(), "missing.yaml"), Overrides{}, testHost); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file must be an error naming it, got %v", err)
	}
}

func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	const cluster = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
	const initDoc = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
	for _, tc := range []struct {
		name string
		yaml string
		want []string // substrings of the error; none means success
	}{
		{"unknown nested field", initDoc + "---\n" + cluster + "apiServer:\n  foo: 1\n",
			[]string{`document 2 (ClusterConfiguration): unknown field "apiServer.foo"`}},
		{"unknown top-level field", initDoc + "bogus: true\n", []string{`document 1 (InitConfiguration): unknown field "bogus"`}},
		{"field names are case-sensitive", cluster + "ClusterName: x\n", []string{`unknown field "ClusterName"`}},
		{"several unknown fields", cluster + "a: 1\nnetworking:\n  b: 2\n", []string{`unknown field "a"`, `unknown field "networking.b"`}},
		{"unknown kind", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfig\n", []string{`document 1 (InitConfig)`, `unknown kind "InitConfig"`}},
		{"unknown kubestrap kind", "apiVersion: kubestrap.io/v1alpha1\nkind: Foo\n", []string{`unknown kind "Foo"`}},
		{"unknown apiVersion", "apiVersion: example.com/v1\nkind: Foo\n", []string{`unknown apiVersion "example.com/v1"`}},
		{"unknown kubestrap version", "apiVersion: kubestrap.io/v1\nkind: KubestrapConfiguration\n", []string{`unknown apiVersion "kubestrap.io/v1"`}},
		{"v1beta3 rejected with a hint", "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n",
			[]string{"kubeadm.k8s.io/v1beta3 is no longer supported", "kubeadm config migrate"}},
		{"v1beta2 rejected", "apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n", []string{"v1beta2 is no longer supported"}},
		{"experimental v1 rejected", "apiVersion: kubeadm.k8s.io/v1\nkind: ClusterConfiguration\n", []string{"experimental"}},
		{"missing apiVersion", "kind: ClusterConfiguration\n", []string{"apiVersion is missing"}},
		{"missing kind", "apiVersion: kubeadm.k8s.io/v1beta4\n", []string{"kind is missing"}},
		{"duplicate kind", cluster + "---\n" + cluster, []string{"document 2 (ClusterConfiguration): kind ClusterConfiguration is already given by document 1"}},
		{"duplicate key", cluster + "clusterName: a\nclusterName: b\n", []string{"document 1 (ClusterConfiguration)", `"clusterName" already set`}},
		{"wrong type", initDoc + "localAPIEndpoint:\n  bindPort: abc\n", []string{"document 1 (InitConfiguration)", "localAPIEndpoint.bindPort"}},
		{"bad duration names its field", cluster + "certificateValidityPeriod: 5x\n", []string{"certificateValidityPeriod: time:", `"5x"`}},
		{"not an object", "- a\n- b\n", []string{"document 1", "not a YAML object"}},
		{"no init documents", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ResetConfiguration\n", []string{"no InitConfiguration, ClusterConfiguration or KubestrapConfiguration document"}},
		{"typo in a join document of an init file", cluster + "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  tokn: x\n",
			[]string{`document 2 (JoinConfiguration): unknown field "discovery.tokn"`}},
		{"kubelet and kube-proxy configs accepted", cluster + "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n" +
			"---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n", nil},
		{"unsupported kubelet config version", "apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n", []string{"unsupported component config"}},
		{"upgrade configuration ignored", cluster + "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\napply: {}\n", nil},
		{"leading separator and comments", "# a comment\n---\n" + cluster + "--- \n# only a comment\n---\n" + initDoc, nil},
		{"http endpoints of external etcd (kubeadm v1.37)", cluster + "etcd:\n  external:\n    endpoints: [\"http://10.0.0.5:2379\"]\n    httpEndpoints: [\"http://10.0.0.5:2381\"]\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadInitData("test.yaml", []byte(tc.yaml), Overrides{}, testHost)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q, got none", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "test.yaml: ") {
				t.Errorf("error should name the file: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestDocumentNumbering(t *testing.T) {
	t.Parallel()
	docs, err := ParseDocuments([]byte("---\n# comment\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\n\napiVersion: kubestrap.io/v1alpha1\nkind: KubestrapConfiguration\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := docs.Kinds(); !reflect.DeepEqual(got, []string{KindInit, KindKubestrap}) {
		t.Fatalf("kinds %v", got)
	}
	if docs[0].Index != 1 || docs[0].Line != 4 || docs[1].Index != 2 || docs[1].Line != 7 {
		t.Errorf("numbering: %+v", docs)
	}
	if docs[1].String() != "document 2 (KubestrapConfiguration)" {
		t.Errorf("String() = %q", docs[1].String())
	}
	if _, ok := docs.Find(KubestrapAPIVersion, KindKubestrap); !ok {
		t.Error("Find")
	}
}

// validConfig is a complete configuration every validation case starts from.
func validConfig() *Config {
	c := DefaultInit()
	c.Init.BootstrapTokens[0].Token = "abcdef.0123456789abcdef"
	return c
}

func TestValidationRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   string // substring of the error; "" means valid
	}{
		{"defaults are valid", func(c *Config) {}, ""},
		{"empty token is left for EnsureBootstrapToken", func(c *Config) { c.Init.BootstrapTokens[0].Token = "" }, ""},
		{"advertise address not an IP", func(c *Config) { c.Init.LocalAPIEndpoint.AdvertiseAddress = "example.com" }, `localAPIEndpoint.advertiseAddress: Invalid value: "example.com"`},
		{"advertise address unspecified", func(c *Config) { c.Init.LocalAPIEndpoint.AdvertiseAddress = "0.0.0.0" }, "unspecified"},
		{"advertise address IPv6", func(c *Config) { c.Init.LocalAPIEndpoint.AdvertiseAddress = "fd00::10" }, ""},
		{"advertise address loopback", func(c *Config) { c.Init.LocalAPIEndpoint.AdvertiseAddress = "127.0.0.1" }, ""},
		{"advertise address missing", func(c *Config) { c.Init.LocalAPIEndpoint.AdvertiseAddress = "" }, "localAPIEndpoint.advertiseAddress: Required"},
		{"bind port too large", func(c *Config) { c.Init.LocalAPIEndpoint.BindPort = 70000 }, "localAPIEndpoint.bindPort: Invalid value: 70000"},
		{"bind port negative", func(c *Config) { c.Init.LocalAPIEndpoint.BindPort = -1 }, "localAPIEndpoint.bindPort"},
		{"service subnet not a CIDR", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "10.96.0.0/33" }, `networking.serviceSubnet: Invalid value: "10.96.0.0/33"`},
		{"service subnet leading zeros", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "010.96.0.0/12" }, "networking.serviceSubnet"},
		{"service subnet too large", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "10.0.0.0/11" }, "too large"},
		{"service subnet 20 host bits", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "10.96.0.0/12" }, ""},
		{"service subnet too small", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "10.96.0.0/29" }, "too small"},
		{"IPv6 service subnet too large", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "fd00::/64" }, "too large"},
		{"dual-stack service subnet", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "10.96.0.0/12,fd00:10:96::/112" }, ""},
		{"two IPv4 service subnets", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "10.96.0.0/12,10.112.0.0/12" }, "one IPv4 and one IPv6"},
		{"three service subnets", func(c *Config) { c.Cluster.Networking.ServiceSubnet = "10.96.0.0/12,fd00::/112,10.112.0.0/12" }, "expected one CIDR"},
		{"pod subnet", func(c *Config) { c.Cluster.Networking.PodSubnet = "10.244.0.0/16" }, ""},
		{"dual-stack pod subnet", func(c *Config) { c.Cluster.Networking.PodSubnet = "10.244.0.0/16,fd00:10:244::/56" }, ""},
		{"pod subnet bad", func(c *Config) { c.Cluster.Networking.PodSubnet = "10.244.0.0" }, `networking.podSubnet: Invalid value: "10.244.0.0"`},
		{"pod subnet overlaps services", func(c *Config) { c.Cluster.Networking.PodSubnet = "10.96.0.0/16" }, "overlaps the service subnet 10.96.0.0/12"},
		{"pod subnet smaller than a node range", func(c *Config) { c.Cluster.Networking.PodSubnet = "10.244.0.0/25" }, "smaller than one node's pod range"},
		{"pod subnet too many nodes", func(c *Config) { c.Cluster.Networking.PodSubnet = "10.0.0.0/7" }, "networking.podSubnet"},
		{"pod subnet with a custom node mask", func(c *Config) {
			c.Cluster.Networking.PodSubnet = "10.244.0.0/25"
			c.Cluster.ControllerManager.ExtraArgs = []Arg{{Name: "node-cidr-mask-size-ipv4", Value: "26"}}
		}, ""},
		{"node mask check off without node CIDR allocation", func(c *Config) {
			c.Cluster.Networking.PodSubnet = "10.244.0.0/25"
			c.Cluster.ControllerManager.ExtraArgs = []Arg{{Name: "allocate-node-cidrs", Value: "false"}}
		}, ""},
		{"DNS domain", func(c *Config) { c.Cluster.Networking.DNSDomain = "Cluster_Local" }, "networking.dnsDomain: Invalid value"},
		{"node name", func(c *Config) { c.Init.NodeRegistration.Name = "Node_1" }, `nodeRegistration.name: Invalid value: "Node_1"`},
		{"node name missing", func(c *Config) { c.Init.NodeRegistration.Name = "" }, "nodeRegistration.name: Required"},
		{"node name FQDN", func(c *Config) { c.Init.NodeRegistration.Name = "cp-1.example.com" }, ""},
		{"token format", func(c *Config) { c.Init.BootstrapTokens[0].Token = "abcdef.0123456789ABCDEF" }, "bootstrapTokens[0].token: Invalid value"},
		{"token secret not echoed", func(c *Config) { c.Init.BootstrapTokens[0].Token = "abcdef.0123456789ABCDEF" }, `"abcdef.<redacted>"`},
		{"duplicate token IDs", func(c *Config) {
			c.Init.BootstrapTokens = append(c.Init.BootstrapTokens, BootstrapToken{Token: "abcdef.1111111111111111", Usages: []string{"signing"}})
		}, "bootstrapTokens[1].token: Duplicate value"},
		{"token usage", func(c *Config) { c.Init.BootstrapTokens[0].Usages = []string{"signing", "flying"} }, "bootstrapTokens[0].usages"},
		{"token group", func(c *Config) { c.Init.BootstrapTokens[0].Groups = []string{"admins"} }, "bootstrapTokens[0].groups[0]"},
		{"token groups without authentication", func(c *Config) { c.Init.BootstrapTokens[0].Usages = []string{"signing"} }, `bootstrapTokens[0].groups: Invalid value: ["system:bootstrappers:kubeadm:default-node-token"]: groups need the "authentication" usage`},
		{"token groups with authentication", func(c *Config) { c.Init.BootstrapTokens[0].Usages = []string{"authentication"} }, ""},
		{"token negative ttl", func(c *Config) { c.Init.BootstrapTokens[0].TTL = &metav1.Duration{Duration: -time.Hour} }, "bootstrapTokens[0].ttl"},
		{"token zero ttl never expires", func(c *Config) { c.Init.BootstrapTokens[0].TTL = &metav1.Duration{} }, ""},
		{"token ttl and expires", func(c *Config) { c.Init.BootstrapTokens[0].Expires = &metav1.Time{Time: time.Now()} }, "mutually exclusive"},
		{"negative timeout", func(c *Config) { c.Init.Timeouts.Discovery = &metav1.Duration{Duration: -time.Second} }, "timeouts.discovery: Invalid value"},
		{"cert validity zero", func(c *Config) { c.Cluster.CertificateValidityPeriod = &metav1.Duration{} }, "certificateValidityPeriod: Invalid value"},
		{"CA validity negative", func(c *Config) { c.Cluster.CACertificateValidityPeriod = &metav1.Duration{Duration: -1} }, "caCertificateValidityPeriod"},
		{"cert SAN IP, DNS and wildcard", func(c *Config) {
			c.Cluster.APIServer.CertSANs = []string{"10.0.0.1", "fd00::1", "api.example.com", "*.example.com"}
		}, ""},
		{"cert SAN invalid", func(c *Config) { c.Cluster.APIServer.CertSANs = []string{"ok.example.com", "not a name"} }, `apiServer.certSANs[1]: Invalid value: "not a name"`},
		{"etcd server SAN invalid", func(c *Config) { c.Cluster.Etcd.Local.ServerCertSANs = []string{"bad_name"} }, "etcd.local.serverCertSANs[0]"},
		{"etcd peer SAN invalid", func(c *Config) { c.Cluster.Etcd.Local.PeerCertSANs = []string{"*"} }, "etcd.local.peerCertSANs[0]"},
		{"relative certificatesDir", func(c *Config) { c.Cluster.CertificatesDir = "pki" }, `certificatesDir: Invalid value: "pki": must be an absolute path`},
		{"relative etcd dataDir", func(c *Config) { c.Cluster.Etcd.Local.DataDir = "var/lib/etcd" }, "etcd.local.dataDir: Invalid value"},
		{"encryption algorithm", func(c *Config) { c.Cluster.EncryptionAlgorithm = "DSA" }, `encryptionAlgorithm: Unsupported value: "DSA"`},
		{"encryption algorithm RSA-4096", func(c *Config) { c.Cluster.EncryptionAlgorithm = AlgorithmRSA4096 }, ""},
		{"mode", func(c *Config) { c.Kubestrap.Mode = "docker" }, `KubestrapConfiguration.mode: Unsupported value: "docker"`},
		{"mode static-pod", func(c *Config) { c.Kubestrap.Mode = ModeStaticPod }, ""},
		{"cluster name", func(c *Config) { c.Cluster.ClusterName = "My Cluster" }, `clusterName: Invalid value: "My Cluster"`},
		{"control plane endpoint DNS", func(c *Config) { c.Cluster.ControlPlaneEndpoint = "api.example.com" }, ""},
		{"control plane endpoint with port", func(c *Config) { c.Cluster.ControlPlaneEndpoint = "api.example.com:443" }, ""},
		{"control plane endpoint IPv6", func(c *Config) { c.Cluster.ControlPlaneEndpoint = "[fd00::1]:6443" }, ""},
		{"control plane endpoint bad port", func(c *Config) { c.Cluster.ControlPlaneEndpoint = "api.example.com:0" }, "controlPlaneEndpoint: Invalid value"},
		{"control plane endpoint empty port", func(c *Config) { c.Cluster.ControlPlaneEndpoint = "api.example.com:" }, "controlPlaneEndpoint: Invalid value"},
		{"control plane endpoint bad host", func(c *Config) { c.Cluster.ControlPlaneEndpoint = "api_example:6443" }, `host "api_example"`},
		{"extra arg with dashes", func(c *Config) { c.Cluster.APIServer.ExtraArgs = []Arg{{Name: "--v", Value: "2"}} }, "apiServer.extraArgs[0].name"},
		{"extra arg empty name", func(c *Config) { c.Cluster.Scheduler.ExtraArgs = []Arg{{Value: "2"}} }, "scheduler.extraArgs[0].name: Required"},
		{"extra arg with value in name", func(c *Config) { c.Cluster.ControllerManager.ExtraArgs = []Arg{{Name: "v=2"}} }, "controllerManager.extraArgs[0].name"},
		{"kubelet extra arg", func(c *Config) { c.Init.NodeRegistration.KubeletExtraArgs = []Arg{{Name: "-v"}} }, "nodeRegistration.kubeletExtraArgs[0].name"},
		{"etcd extra arg", func(c *Config) { c.Cluster.Etcd.Local.ExtraArgs = []Arg{{Name: ""}} }, "etcd.local.extraArgs[0].name"},
		{"extra volume relative paths", func(c *Config) {
			c.Cluster.APIServer.ExtraVolumes = []HostPathMount{{Name: "audit", HostPath: "audit", MountPath: "/etc/audit"}}
		}, "apiServer.extraVolumes[0].hostPath"},
		{"extra volume mount path", func(c *Config) {
			c.Cluster.ControllerManager.ExtraVolumes = []HostPathMount{{Name: "x", HostPath: "/x", MountPath: "x"}}
		}, "controllerManager.extraVolumes[0].mountPath"},
		{"extra volume duplicate name", func(c *Config) {
			c.Cluster.APIServer.ExtraVolumes = []HostPathMount{{Name: "x", HostPath: "/x", MountPath: "/x"}, {Name: "x", HostPath: "/y", MountPath: "/y"}}
		}, "apiServer.extraVolumes[1].name: Duplicate value"},
		{"extra volume path type", func(c *Config) {
			c.Cluster.APIServer.ExtraVolumes = []HostPathMount{{Name: "x", HostPath: "/x", MountPath: "/x", PathType: "Folder"}}
		}, "apiServer.extraVolumes[0].pathType: Unsupported value"},
		{"extra env name", func(c *Config) {
			c.Cluster.APIServer.ExtraEnvs = []EnvVar{{EnvVar: corev1.EnvVar{Name: "1BAD", Value: "x"}}}
		}, "apiServer.extraEnvs[0].name"},
		{"external etcd", func(c *Config) {
			c.Cluster.Etcd = Etcd{External: &ExternalEtcd{Endpoints: []string{"https://10.0.0.5:2379"}, CAFile: "/pki/ca.crt", CertFile: "/pki/c.crt", KeyFile: "/pki/c.key"}}
		}, ""},
		{"external etcd endpoint not a URL", func(c *Config) {
			c.Cluster.Etcd = Etcd{External: &ExternalEtcd{Endpoints: []string{"10.0.0.5:2379"}}}
		}, "etcd.external.endpoints[0]"},
		{"external etcd no endpoints", func(c *Config) { c.Cluster.Etcd = Etcd{External: &ExternalEtcd{}} }, "etcd.external.endpoints: Required"},
		{"external etcd TLS needs https", func(c *Config) {
			c.Cluster.Etcd = Etcd{External: &ExternalEtcd{Endpoints: []string{"http://e:2379"}, CAFile: "/ca.crt"}}
		}, "must use https"},
		{"external etcd cert without key", func(c *Config) {
			c.Cluster.Etcd = Etcd{External: &ExternalEtcd{Endpoints: []string{"https://e:2379"}, CAFile: "/ca.crt", CertFile: "/c.crt"}}
		}, "certFile and keyFile"},
		{"external etcd relative CA", func(c *Config) {
			c.Cluster.Etcd = Etcd{External: &ExternalEtcd{Endpoints: []string{"https://e:2379"}, CAFile: "ca.crt"}}
		}, "etcd.external.caFile"},
		{"local and external etcd", func(c *Config) {
			c.Cluster.Etcd.External = &ExternalEtcd{Endpoints: []string{"https://e:2379"}}
		}, "mutually exclusive"},
		{"kubestrap port out of range", func(c *Config) { c.Kubestrap.Etcd.PeerPort = 65536 }, "KubestrapConfiguration.etcd.peerPort: Invalid value: 65536"},
		{"ports must differ", func(c *Config) { c.Kubestrap.Scheduler.SecurePort = 10257 }, "KubestrapConfiguration.scheduler.securePort: Invalid value: 10257: port already used by KubestrapConfiguration.controllerManager.securePort"},
		{"approver health port clashes with the scheduler", func(c *Config) { c.Kubestrap.CSRApprover.HealthPort = 10259 }, "KubestrapConfiguration.csrApprover.healthPort: Invalid value: 10259: port already used by KubestrapConfiguration.scheduler.securePort"},
		{"approver health port free when disabled", func(c *Config) {
			c.Kubestrap.CSRApprover.HealthPort = 10259
			c.Kubestrap.CSRApprover.Disabled = true
		}, ""},
		{"approver health port out of range", func(c *Config) { c.Kubestrap.CSRApprover.HealthPort = 70000 }, "KubestrapConfiguration.csrApprover.healthPort: Invalid value: 70000"},
		{"apiserver port clashes with etcd", func(c *Config) { c.Init.LocalAPIEndpoint.BindPort = 2379 }, "KubestrapConfiguration.etcd.clientPort: Invalid value: 2379: port already used by localAPIEndpoint.bindPort"},
		{"etcd ports free with external etcd", func(c *Config) {
			c.Init.LocalAPIEndpoint.BindPort = 2379
			c.Cluster.Etcd = Etcd{External: &ExternalEtcd{Endpoints: []string{"https://e:2379"}}}
		}, ""},
		{"supervisor negative backoff", func(c *Config) { c.Kubestrap.Supervisor.MaxRestartBackoff = &metav1.Duration{Duration: -time.Second} }, "KubestrapConfiguration.supervisor.maxRestartBackoff"},
		{"supervisor log size", func(c *Config) { c.Kubestrap.Supervisor.LogMaxSizeMB = -1 }, "KubestrapConfiguration.supervisor.logMaxSizeMB"},
		{"kubernetes version label", func(c *Config) { c.Cluster.KubernetesVersion = "stable-1" }, `kubernetesVersion: Invalid value: "stable-1"`},
		{"kubernetes version too old", func(c *Config) { c.Cluster.KubernetesVersion = "v1.35.4" }, "kubernetesVersion"},
		{"kubernetes version too new", func(c *Config) { c.Cluster.KubernetesVersion = "v1.38.0" }, "kubernetesVersion"},
		{"kubernetes version previous minor", func(c *Config) { c.Cluster.KubernetesVersion = "v1.36.3" }, ""},
		{"certificate key", func(c *Config) { c.Init.CertificateKey = "abcd" }, "certificateKey: Invalid value"},
		{"certificate key valid", func(c *Config) { c.Init.CertificateKey = strings.Repeat("ab", 32) }, ""},
		{"cri socket", func(c *Config) { c.Init.NodeRegistration.CRISocket = "tcp://1.2.3.4:5" }, "nodeRegistration.criSocket"},
		{"no cri socket", func(c *Config) { c.Init.NodeRegistration.CRISocket = "" }, ""},
		{"image pull policy", func(c *Config) { c.Init.NodeRegistration.ImagePullPolicy = "Sometimes" }, "nodeRegistration.imagePullPolicy"},
		{"taint effect", func(c *Config) { c.Init.NodeRegistration.Taints = []Taint{{Key: "a", Effect: "Maybe"}} }, "nodeRegistration.taints[0].effect"},
		{"ignore preflight all and more", func(c *Config) { c.Init.NodeRegistration.IgnorePreflightErrors = []string{"all", "Swap"} }, "ignorePreflightErrors[0]"},
		{"image repository", func(c *Config) { c.Cluster.ImageRepository = "registry.k8s.io/UPPER" }, "imageRepository: Invalid value"},
		{"image repository with port and path", func(c *Config) { c.Cluster.ImageRepository = "myregistry:5000/k8s" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.mutate(c)
			err := Validate(c)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("want *config.Error, got %T", err)
			}
			var fe *field.Error
			if !errors.As(err, &fe) {
				t.Errorf("validation problems should be *field.Error values")
			}
		})
	}
}

func TestReportsEveryProblem(t *testing.T) {
	t.Parallel()
	file := `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 0.0.0.0
  bindPort: 99999
nodeRegistration:
  name: Bad_Name
bootstrapTokens:
- token: nope
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  unknownField: 1
  certSANs: ["bad name"]
networking:
  serviceSubnet: 10.96.0.0/33
  podSubnet: 10.96.0.0/16,10.97.0.0/16,fd00::/56
certificatesDir: relative/pki
encryptionAlgorithm: RSA-1024
---
apiVersion: kubestrap.io/v1alpha1
kind: KubestrapConfiguration
mode: container
scheduler:
  securePort: 10257
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
`
	_, err := LoadInitData("bad.yaml", []byte(file), Overrides{}, testHost)
	if err == nil {
		t.Fatal("want errors")
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Error, got %T: %v", err, err)
	}
	for _, w := range []string{
		`unknown field "apiServer.unknownField"`,
		"localAPIEndpoint.advertiseAddress",
		"localAPIEndpoint.bindPort",
		"nodeRegistration.name",
		"bootstrapTokens[0].token",
		"apiServer.certSANs[0]",
		`networking.serviceSubnet: Invalid value: "10.96.0.0/33"`,
		"networking.podSubnet",
		"certificatesDir",
		"encryptionAlgorithm",
		"KubestrapConfiguration.mode",
		"KubestrapConfiguration.scheduler.securePort",
		"document 4 (JoinConfiguration) at line 28: apiVersion kubeadm.k8s.io/v1beta3 is no longer supported",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing problem %q in\n%v", w, err)
		}
	}
	if len(ce.Problems) < 13 {
		t.Errorf("want at least 13 problems, got %d:\n%v", len(ce.Problems), err)
	}
	if !strings.HasPrefix(err.Error(), "bad.yaml: ") || !strings.Contains(err.Error(), " problems:\n  - ") {
		t.Errorf("the message should name the file and list one problem per line:\n%v", err)
	}
}

func TestOverridesWinOverFile(t *testing.T) {
	t.Parallel()
	file := `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.1
  bindPort: 7443
nodeRegistration:
  name: from-file
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  certSANs: [file.example.com]
controlPlaneEndpoint: file.example.com
networking:
  serviceSubnet: 10.100.0.0/16
  podSubnet: 10.244.0.0/16
  dnsDomain: file.local
certificatesDir: /file/pki
kubernetesVersion: v1.37.0
encryptionAlgorithm: RSA-2048
---
apiVersion: kubestrap.io/v1alpha1
kind: KubestrapConfiguration
mode: systemd
`
	t.Run("zero overrides keep the file", func(t *testing.T) {
		t.Parallel()
		c, err := LoadInitData("f", []byte(file), Overrides{}, testHost)
		if err != nil {
			t.Fatal(err)
		}
		if c.AdvertiseAddress() != "10.0.0.1" || c.BindPort() != 7443 || c.NodeName() != "from-file" ||
			c.Cluster.Networking.DNSDomain != "file.local" || c.Kubestrap.Mode != ModeSystemd ||
			c.Cluster.EncryptionAlgorithm != AlgorithmRSA2048 || c.Cluster.KubernetesVersion != "v1.37.0" {
			t.Errorf("file values lost: %+v", c)
		}
	})
	t.Run("flags win", func(t *testing.T) {
		t.Parallel()
		o := Overrides{
			AdvertiseAddress: "10.0.0.2", BindPort: 8443, CertExtraSANs: []string{"flag.example.com"},
			ControlPlaneEndpoint: "flag.example.com:8443", NodeName: "from-flag", ServiceCIDR: "10.101.0.0/16",
			PodCIDR: "10.245.0.0/16", DNSDomain: "flag.local", CertDir: "/flag/pki", KubernetesVersion: "v1.37.2",
			EncryptionAlgorithm: AlgorithmECDSAP384, Mode: ModeLocal,
		}
		c, err := LoadInitData("f", []byte(file), o, testHost)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ got, want any }{
			{c.AdvertiseAddress(), "10.0.0.2"}, {c.BindPort(), int32(8443)},
			{c.Cluster.APIServer.CertSANs, []string{"flag.example.com"}},
			{c.Cluster.ControlPlaneEndpoint, "flag.example.com:8443"}, {c.NodeName(), "from-flag"},
			{c.Cluster.Networking.ServiceSubnet, "10.101.0.0/16"}, {c.Cluster.Networking.PodSubnet, "10.245.0.0/16"},
			{c.Cluster.Networking.DNSDomain, "flag.local"}, {c.Cluster.CertificatesDir, "/flag/pki"},
			{c.Cluster.KubernetesVersion, "v1.37.2"}, {c.Cluster.EncryptionAlgorithm, AlgorithmECDSAP384},
			{c.Kubestrap.Mode, ModeLocal},
		}
		for i, w := range want {
			if !reflect.DeepEqual(w.got, w.want) {
				t.Errorf("override %d: got %v, want %v", i, w.got, w.want)
			}
		}
	})
	t.Run("a bad flag value is reported", func(t *testing.T) {
		t.Parallel()
		_, err := LoadInitData("f", []byte(file), Overrides{ServiceCIDR: "nonsense"}, testHost)
		if err == nil || !strings.Contains(err.Error(), `networking.serviceSubnet: Invalid value: "nonsense"`) {
			t.Errorf("got %v", err)
		}
	})
}

func TestDynamicDefaults(t *testing.T) {
	t.Parallel()
	t.Run("detected", func(t *testing.T) {
		t.Parallel()
		c, err := LoadInitData("f", []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  certSANs: [API.Example.COM]\n"), Overrides{}, testHost)
		if err != nil {
			t.Fatal(err)
		}
		if c.NodeName() != "cp-1.example.com" {
			t.Errorf("node name %q: want the lower-cased hostname", c.NodeName())
		}
		if c.AdvertiseAddress() != "192.168.0.10" {
			t.Errorf("advertise address %q", c.AdvertiseAddress())
		}
		if want := []Taint{{Key: ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule}}; !reflect.DeepEqual(c.Init.NodeRegistration.Taints, want) {
			t.Errorf("taints %v", c.Init.NodeRegistration.Taints)
		}
		if c.Cluster.APIServer.CertSANs[0] != "api.example.com" {
			t.Errorf("SANs should be lower-cased: %v", c.Cluster.APIServer.CertSANs)
		}
	})
	t.Run("explicit values kept", func(t *testing.T) {
		t.Parallel()
		file := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.1.1.1\nnodeRegistration:\n  name: Mine\n  taints: []\n  criSocket: /run/containerd/containerd.sock\n"
		c, err := LoadInitData("f", []byte(file), Overrides{}, fakeHost{nameErr: errors.New("boom"), ipErr: errors.New("boom")})
		if err != nil {
			t.Fatal(err)
		}
		if c.NodeName() != "mine" || c.AdvertiseAddress() != "10.1.1.1" {
			t.Errorf("got %q %q", c.NodeName(), c.AdvertiseAddress())
		}
		if c.Init.NodeRegistration.Taints == nil || len(c.Init.NodeRegistration.Taints) != 0 {
			t.Errorf("an explicit empty taint list means no taints, got %v", c.Init.NodeRegistration.Taints)
		}
		if c.Init.NodeRegistration.CRISocket != "unix:///run/containerd/containerd.sock" {
			t.Errorf("criSocket %q", c.Init.NodeRegistration.CRISocket)
		}
	})
	t.Run("undetectable", func(t *testing.T) {
		t.Parallel()
		_, err := LoadInit("", Overrides{}, fakeHost{nameErr: errors.New("no uts"), ipErr: errors.New("no route")})
		if err == nil {
			t.Fatal("want an error")
		}
		for _, w := range []string{"--node-name", "no uts", "--apiserver-advertise-address", "no route"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q should mention %q", err, w)
			}
		}
		var ce *Error
		if errors.As(err, &ce) && len(ce.Problems) != 2 {
			t.Errorf("one problem per undetected value, got %d: %v", len(ce.Problems), err)
		}
	})
	t.Run("print defaults stay placeholders", func(t *testing.T) {
		t.Parallel()
		c := DefaultInit()
		if c.NodeName() != PlaceholderNodeName || c.AdvertiseAddress() != PlaceholderAdvertiseAddress || c.Init.BootstrapTokens[0].Token != PlaceholderToken {
			t.Errorf("DefaultInit must use kubeadm's placeholders: %+v", c.Init)
		}
	})
}

func TestEnsureBootstrapToken(t *testing.T) {
	t.Parallel()
	c, err := LoadInit("", Overrides{}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureBootstrapToken(c); err != nil {
		t.Fatal(err)
	}
	tok := c.Init.BootstrapTokens[0]
	if !bootstraputil.IsValidBootstrapToken(tok.Token) {
		t.Errorf("generated token %q is not valid", tok.Token)
	}
	if tok.TTL.Duration != 24*time.Hour || !reflect.DeepEqual(tok.Usages, []string{"signing", "authentication"}) ||
		!reflect.DeepEqual(tok.Groups, []string{"system:bootstrappers:kubeadm:default-node-token"}) {
		t.Errorf("token defaults: %+v", tok)
	}
	if err := Validate(c); err != nil {
		t.Errorf("config with a generated token: %v", err)
	}
	before := tok.Token
	if err := EnsureBootstrapToken(c); err != nil || c.Init.BootstrapTokens[0].Token != before {
		t.Errorf("an existing token must be kept (err %v)", err)
	}
	empty := &Config{}
	if err := EnsureBootstrapToken(empty); err != nil || len(empty.Init.BootstrapTokens) != 1 || !bootstraputil.IsValidBootstrapToken(empty.Init.BootstrapTokens[0].Token) {
		t.Errorf("a config without token entries gets one: %+v (err %v)", empty.Init.BootstrapTokens, err)
	}
}

func TestValidateFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ks := "apiVersion: kubestrap.io/v1alpha1\nkind: KubestrapConfiguration\nmode: local\n"
	join := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    apiServerEndpoint: 10.0.0.1:6443\n    caCertHashes: [sha256:" + strings.Repeat("0a", 32) + "]\n"
	kinds, err := ValidateFile(write("ks.yaml", ks), testHost, PhaseNames{})
	if err != nil || !reflect.DeepEqual(kinds, []string{KindKubestrap}) {
		t.Errorf("kubestrap-only file: %v %v", kinds, err)
	}
	if _, err := ValidateFile(write("join.yaml", join+"---\n"+ks), testHost, PhaseNames{}); err != nil {
		t.Errorf("join file: %v", err)
	}
	_, err = ValidateFile(write("bad-join.yaml", join+"---\n"+strings.Replace(ks, "local", "nope", 1)), testHost, PhaseNames{})
	if err == nil || strings.Count(err.Error(), "KubestrapConfiguration.mode") != 1 {
		t.Errorf("a problem in a document both commands read is reported once: %v", err)
	}
	_, err = ValidateFile(write("empty.yaml", "# nothing\n"), testHost, PhaseNames{})
	if err == nil || !strings.Contains(err.Error(), "no InitConfiguration") {
		t.Errorf("empty file: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	one := &Error{Source: "a.yaml", Problems: []error{errors.New("x")}}
	if one.Error() != "a.yaml: x" {
		t.Errorf("%q", one.Error())
	}
	two := &Error{Problems: []error{errors.New("x"), errors.New("y")}}
	if two.Error() != "invalid configuration: 2 problems:\n  - x\n  - y" {
		t.Errorf("%q", two.Error())
	}
	if newError("s", nil) != nil {
		t.Error("no problems must be a nil error")
	}
}
