package components

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
)

const goldenDir = "../../testdata/components"

// baseConfig is a fully defaulted configuration as the config package would hand it over for
// `init --apiserver-advertise-address=192.168.0.10`: kubeadm's defaults plus kubestrap's ports.
func baseConfig() *config.Config {
	return &config.Config{
		Init: config.InitConfiguration{
			NodeRegistration: config.NodeRegistration{Name: "node1"},
			LocalAPIEndpoint: config.APIEndpoint{AdvertiseAddress: "192.168.0.10", BindPort: 6443},
		},
		Cluster: config.ClusterConfiguration{
			Etcd: config.Etcd{Local: &config.LocalEtcd{DataDir: "/var/lib/etcd"}},
			Networking: config.Networking{
				ServiceSubnet: "10.96.0.0/12",
				DNSDomain:     "cluster.local",
			},
			KubernetesVersion:   "v1.37.2",
			CertificatesDir:     "/etc/kubernetes/pki",
			ImageRepository:     "registry.k8s.io",
			ClusterName:         "kubernetes",
			EncryptionAlgorithm: config.AlgorithmRSA2048,
		},
		Kubestrap: config.KubestrapConfiguration{
			Mode:              config.ModeLocal,
			Etcd:              config.EtcdPorts{ClientPort: 2379, PeerPort: 2380, MetricsPort: 2381},
			ControllerManager: config.ComponentPort{SecurePort: 10257},
			Scheduler:         config.ComponentPort{SecurePort: 10259},
		},
	}
}

// customConfig has extraArgs that override defaults and add new flags, a pod subnet and an
// external etcd cluster.
func customConfig() *config.Config {
	cfg := baseConfig()
	cfg.Cluster.ClusterName = "prod"
	cfg.Cluster.Networking = config.Networking{
		ServiceSubnet: "10.100.0.0/16",
		PodSubnet:     "10.244.0.0/16",
		DNSDomain:     "corp.internal",
	}
	cfg.Cluster.Etcd = config.Etcd{External: &config.ExternalEtcd{
		Endpoints: []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"},
		CAFile:    "/etc/etcd/ca.crt",
		CertFile:  "/etc/etcd/client.crt",
		KeyFile:   "/etc/etcd/client.key",
	}}
	cfg.Cluster.APIServer.ExtraArgs = []config.Arg{
		{Name: "tls-sni-cert-key", Value: "/etc/kubernetes/pki/b.crt,/etc/kubernetes/pki/b.key:b.example.com"},
		{Name: "enable-admission-plugins", Value: "NodeRestriction,AlwaysPullImages"},
		{Name: "audit-log-maxage", Value: "7"},
		{Name: "event-ttl", Value: "2h"},
		{Name: "tls-sni-cert-key", Value: "/etc/kubernetes/pki/a.crt,/etc/kubernetes/pki/a.key:a.example.com"},
	}
	cfg.Cluster.ControllerManager.ExtraArgs = []config.Arg{
		{Name: "bind-address", Value: "0.0.0.0"},
		{Name: "node-cidr-mask-size", Value: "24"},
	}
	cfg.Cluster.Scheduler.ExtraArgs = []config.Arg{
		{Name: "config", Value: "/etc/kubernetes/scheduler-config.yaml"},
	}
	return cfg
}

// laptopConfig is a second cluster on a workstation: its own root dir, loopback advertise
// address and shifted ports.
func laptopConfig() *config.Config {
	cfg := baseConfig()
	cfg.Init.NodeRegistration.Name = "laptop"
	cfg.Init.LocalAPIEndpoint = config.APIEndpoint{AdvertiseAddress: "127.0.0.1", BindPort: 16443}
	cfg.Kubestrap.Etcd = config.EtcdPorts{ClientPort: 12379, PeerPort: 12380, MetricsPort: 12381}
	cfg.Kubestrap.ControllerManager.SecurePort = 20257
	cfg.Kubestrap.Scheduler.SecurePort = 20259
	cfg.Kubestrap.CSRApprover.HealthPort = 20261
	return cfg
}

var goldenCases = []struct {
	name string
	cfg  func() *config.Config
	root string
}{
	{"default", baseConfig, "/"},
	{"custom", customConfig, "/"},
	{"rootdir", laptopConfig, "/tmp/root"},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			comps := ControlPlane(tc.cfg(), paths.MustUnder(tc.root))
			var health strings.Builder
			for _, c := range comps {
				checkGolden(t, filepath.Join(goldenDir, tc.name, c.Name+".args"), strings.Join(c.Args, "\n")+"\n")
				fmt.Fprintf(&health, "%s %s liveness=%s startup=%s\n", c.Name, c.HealthURL(), c.Health.LivenessPath, c.Health.StartupPath)
			}
			checkGolden(t, filepath.Join(goldenDir, tc.name, "health.txt"), health.String())
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	golden.Check(t, path, []byte(got))
}

// kubeadm v1.37.2's command lines for advertiseAddress=192.168.0.10 and defaults otherwise
// (kubeadm-reference.md §4), node name node1.
var (
	kubeadmAPIServer = []string{
		"--advertise-address=192.168.0.10",
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--client-ca-file=/etc/kubernetes/pki/ca.crt",
		"--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth=true",
		"--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
		"--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
		"--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
		"--etcd-servers=https://127.0.0.1:2379",
		"--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
		"--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
		"--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--secure-port=6443",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=/etc/kubernetes/pki/sa.pub",
		"--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
		"--service-cluster-ip-range=10.96.0.0/12",
		"--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
		"--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
	}
	kubeadmControllerManager = strings.Fields(`--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf --authorization-kubeconfig=/etc/kubernetes/controller-manager.conf
--bind-address=127.0.0.1 --client-ca-file=/etc/kubernetes/pki/ca.crt --cluster-name=kubernetes
--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt --cluster-signing-key-file=/etc/kubernetes/pki/ca.key
--controllers=*,bootstrapsigner,tokencleaner --kubeconfig=/etc/kubernetes/controller-manager.conf --leader-elect=true
--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt --root-ca-file=/etc/kubernetes/pki/ca.crt
--service-account-private-key-file=/etc/kubernetes/pki/sa.key --use-service-account-credentials=true`)
	kubeadmScheduler = strings.Fields(`--authentication-kubeconfig=/etc/kubernetes/scheduler.conf --authorization-kubeconfig=/etc/kubernetes/scheduler.conf
--bind-address=127.0.0.1 --kubeconfig=/etc/kubernetes/scheduler.conf --leader-elect=true`)
	kubeadmEtcd = strings.Fields(strings.NewReplacer("<adv>", "192.168.0.10", "<node>", "node1").Replace(
		`--advertise-client-urls=https://<adv>:2379 --cert-file=/etc/kubernetes/pki/etcd/server.crt --client-cert-auth=true
--data-dir=/var/lib/etcd --feature-gates=InitialCorruptCheck=true --initial-advertise-peer-urls=https://<adv>:2380
--initial-cluster=<node>=https://<adv>:2380 --key-file=/etc/kubernetes/pki/etcd/server.key
--listen-client-urls=https://127.0.0.1:2379,https://<adv>:2379 --listen-metrics-urls=http://127.0.0.1:2381
--listen-peer-urls=https://<adv>:2380 --name=<node> --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt
--peer-client-cert-auth=true --peer-key-file=/etc/kubernetes/pki/etcd/peer.key
--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt --snapshot-count=10000
--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt --watch-progress-notify-interval=5s`))
)

// TestKubeadmFidelity holds the default command lines to kubeadm's, plus exactly kubestrap's
// documented additions and nothing else.
func TestKubeadmFidelity(t *testing.T) {
	t.Parallel()
	cfg, p := baseConfig(), paths.MustUnder("/")
	for _, tc := range []struct {
		comp    Component
		kubeadm []string
		extra   []string
	}{
		{Etcd(cfg, p), kubeadmEtcd, nil},
		{APIServer(cfg, p), kubeadmAPIServer, []string{
			"--audit-log-maxage=30",
			"--audit-log-maxbackup=10",
			"--audit-log-maxsize=100",
			"--audit-log-path=/var/log/kubestrap/audit/kube-apiserver-audit.log",
			"--audit-policy-file=/etc/kubernetes/kubestrap/audit-policy.yaml",
			"--encryption-provider-config=/etc/kubernetes/kubestrap/encryption-config.yaml",
			"--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
			"--profiling=false",
			"--service-account-extend-token-expiration=false",
		}},
		{ControllerManager(cfg, p), kubeadmControllerManager, []string{"--kube-api-burst=200", "--profiling=false", "--secure-port=10257"}},
		{Scheduler(cfg, p), kubeadmScheduler, []string{"--profiling=false", "--secure-port=10259"}},
	} {
		want := slices.Concat(tc.kubeadm, tc.extra)
		slices.SortStableFunc(want, func(a, b string) int { return strings.Compare(flagName(a), flagName(b)) })
		if !slices.Equal(tc.comp.Args, want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.comp.Name, tc.comp.Args, want)
		}
		if len(tc.comp.Warnings) != 0 {
			t.Errorf("%s: unexpected warnings %q", tc.comp.Name, tc.comp.Warnings)
		}
	}
}

func flagName(arg string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
	return name
}

func TestArgsSortedAndDeterministic(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		p := paths.MustUnder(tc.root)
		first := ControlPlane(tc.cfg(), p)
		for _, c := range first {
			if !slices.IsSortedFunc(c.Args, func(a, b string) int { return strings.Compare(flagName(a), flagName(b)) }) {
				t.Errorf("%s/%s: args not sorted by name: %q", tc.name, c.Name, c.Args)
			}
			for _, a := range c.Args {
				if !strings.HasPrefix(a, "--") || !strings.Contains(a, "=") {
					t.Errorf("%s/%s: %q is not --name=value", tc.name, c.Name, a)
				}
			}
		}
		// Defaults are collected in a map; repeated builds must not show its random order.
		for range 20 {
			again := ControlPlane(tc.cfg(), p)
			for i := range first {
				if !slices.Equal(first[i].Args, again[i].Args) {
					t.Fatalf("%s/%s: args differ between builds:\n%q\n%q", tc.name, first[i].Name, first[i].Args, again[i].Args)
				}
			}
		}
	}
}

func TestExtraArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		build  func(*config.Config, paths.Paths) Component
		want   []string // all present, in this relative order
		absent []string // flag names that must not appear
		count  map[string]int
	}{
		{
			name: "override kubeadm default by name",
			mutate: func(c *config.Config) {
				c.Cluster.APIServer.ExtraArgs = []config.Arg{{Name: "enable-admission-plugins", Value: "NodeRestriction,AlwaysPullImages"}}
			},
			build: APIServer,
			want:  []string{"--enable-admission-plugins=NodeRestriction,AlwaysPullImages"},
			count: map[string]int{"enable-admission-plugins": 1},
		},
		{
			name: "override secure default",
			mutate: func(c *config.Config) {
				c.Cluster.APIServer.ExtraArgs = []config.Arg{{Name: "profiling", Value: "true"}}
			},
			build: APIServer,
			want:  []string{"--profiling=true"},
			count: map[string]int{"profiling": 1},
		},
		{
			name: "user's controller-manager burst replaces kubestrap's",
			mutate: func(c *config.Config) {
				c.Cluster.ControllerManager.ExtraArgs = []config.Arg{{Name: "kube-api-burst", Value: "30"}}
			},
			build: ControllerManager,
			want:  []string{"--kube-api-burst=30"},
			count: map[string]int{"kube-api-burst": 1},
		},
		{
			name: "new flag is sorted in",
			mutate: func(c *config.Config) {
				c.Cluster.Scheduler.ExtraArgs = []config.Arg{{Name: "config", Value: "/etc/kubernetes/sched.yaml"}}
			},
			build: Scheduler,
			want:  []string{"--bind-address=127.0.0.1", "--config=/etc/kubernetes/sched.yaml", "--kubeconfig=/etc/kubernetes/scheduler.conf"},
		},
		{
			name: "repeated extraArgs all kept in order",
			mutate: func(c *config.Config) {
				c.Cluster.APIServer.ExtraArgs = []config.Arg{
					{Name: "tls-sni-cert-key", Value: "z.crt,z.key"},
					{Name: "tls-sni-cert-key", Value: "a.crt,a.key"},
				}
			},
			build: APIServer,
			want:  []string{"--tls-sni-cert-key=z.crt,z.key", "--tls-sni-cert-key=a.crt,a.key"},
			count: map[string]int{"tls-sni-cert-key": 2},
		},
		{
			name: "repeated extraArgs replace a single default",
			mutate: func(c *config.Config) {
				c.Cluster.Etcd.Local.ExtraArgs = []config.Arg{
					{Name: "listen-client-urls", Value: "https://127.0.0.1:2379"},
					{Name: "listen-client-urls", Value: "https://192.168.0.10:2379"},
				}
			},
			build: Etcd,
			want:  []string{"--listen-client-urls=https://127.0.0.1:2379", "--listen-client-urls=https://192.168.0.10:2379"},
			count: map[string]int{"listen-client-urls": 2},
		},
		{
			name: "authorization-config drops authorization-mode",
			mutate: func(c *config.Config) {
				c.Cluster.APIServer.ExtraArgs = []config.Arg{{Name: "authorization-config", Value: "/etc/kubernetes/authz.yaml"}}
			},
			build:  APIServer,
			want:   []string{"--authorization-config=/etc/kubernetes/authz.yaml"},
			absent: []string{"authorization-mode"},
		},
		{
			name: "advertise-client-urls rewrites etcd-servers",
			mutate: func(c *config.Config) {
				c.Cluster.Etcd.Local.ExtraArgs = []config.Arg{{Name: "advertise-client-urls", Value: "https://10.1.1.1:2379,https://10.1.1.2:2379"}}
			},
			build: APIServer,
			want:  []string{"--etcd-servers=https://10.1.1.1:2379,https://10.1.1.2:2379"},
		},
		{
			name: "podSubnet enables node CIDR allocation",
			mutate: func(c *config.Config) {
				c.Cluster.Networking.PodSubnet = "10.244.0.0/16,fd00:10:244::/56"
			},
			build: ControllerManager,
			want:  []string{"--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16,fd00:10:244::/56", "--service-cluster-ip-range=10.96.0.0/12"},
		},
		{
			name:   "no podSubnet, no node CIDRs",
			mutate: func(*config.Config) {},
			build:  ControllerManager,
			absent: []string{"allocate-node-cidrs", "cluster-cidr", "service-cluster-ip-range"},
		},
		{
			name: "external etcd without a key pair",
			mutate: func(c *config.Config) {
				c.Cluster.Etcd = config.Etcd{External: &config.ExternalEtcd{
					Endpoints: []string{"http://etcd:2379"},
					CertFile:  "/etc/etcd/client.crt",
				}}
			},
			build:  APIServer,
			want:   []string{"--etcd-servers=http://etcd:2379"},
			absent: []string{"etcd-cafile", "etcd-certfile", "etcd-keyfile"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig()
			tc.mutate(cfg)
			args := tc.build(cfg, paths.MustUnder("/")).Args
			last := -1
			for _, w := range tc.want {
				i := slices.Index(args[last+1:], w)
				if i < 0 {
					t.Fatalf("%q missing or out of order in %q", w, args)
				}
				last += i + 1
			}
			names := map[string]int{}
			for _, a := range args {
				names[flagName(a)]++
			}
			for _, n := range tc.absent {
				if names[n] != 0 {
					t.Errorf("--%s present in %q", n, args)
				}
			}
			for n, c := range tc.count {
				if names[n] != c {
					t.Errorf("--%s occurs %d times, want %d", n, names[n], c)
				}
			}
		})
	}
}

func TestAuthorizationModeWarning(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.Cluster.APIServer.ExtraArgs = []config.Arg{{Name: "authorization-mode", Value: "RBAC"}}
	c := APIServer(cfg, paths.MustUnder("/"))
	if got := ArgMap(c.Args)["authorization-mode"]; got != "RBAC" {
		t.Errorf("authorization-mode = %q, want the user's RBAC", got)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `"RBAC"`) {
		t.Errorf("warnings = %q, want one about RBAC", c.Warnings)
	}
}

func TestEndpointReconcilerForLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		adv  string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.0.1.1", true},
		{"::1", true},
		{"192.168.0.10", false},
		{"fd00::10", false},
		{"0.0.0.0", false},
	} {
		cfg := baseConfig()
		cfg.Init.LocalAPIEndpoint.AdvertiseAddress = tc.adv
		v, ok := ArgMap(APIServer(cfg, paths.MustUnder("/")).Args)["endpoint-reconciler-type"]
		if ok != tc.want || (ok && v != "none") {
			t.Errorf("advertise %s: endpoint-reconciler-type=%q (set %v), want set=%v to none", tc.adv, v, ok, tc.want)
		}
	}
}

func TestIPv6(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.Init.LocalAPIEndpoint.AdvertiseAddress = "fd00::10"
	cfg.Cluster.Networking.ServiceSubnet = "fd00:10:96::/112"
	p := paths.MustUnder("/")

	etcd := ArgMap(Etcd(cfg, p).Args)
	for name, want := range map[string]string{
		"advertise-client-urls":       "https://[fd00::10]:2379",
		"listen-client-urls":          "https://[::1]:2379,https://[fd00::10]:2379",
		"listen-peer-urls":            "https://[fd00::10]:2380",
		"initial-advertise-peer-urls": "https://[fd00::10]:2380",
		"initial-cluster":             "node1=https://[fd00::10]:2380",
		"listen-metrics-urls":         "http://[::1]:2381",
	} {
		if etcd[name] != want {
			t.Errorf("etcd --%s=%s, want %s", name, etcd[name], want)
		}
	}
	if got := ArgMap(APIServer(cfg, p).Args)["etcd-servers"]; got != "https://[::1]:2379" {
		t.Errorf("apiserver --etcd-servers=%s, want https://[::1]:2379", got)
	}
	want := map[string]string{
		EtcdName:              "http://[::1]:2381/readyz",
		APIServerName:         "https://[fd00::10]:6443/readyz",
		ControllerManagerName: "https://127.0.0.1:10257/healthz",
		SchedulerName:         "https://127.0.0.1:10259/readyz",
		// Like the controller-manager and the scheduler, on IPv4 loopback, which an IPv6 node
		// has as well.
		CSRApproverName: "http://127.0.0.1:10261/readyz",
	}
	for _, c := range ControlPlane(cfg, p) {
		if got := c.HealthURL(); got != want[c.Name] {
			t.Errorf("%s HealthURL = %s, want %s", c.Name, got, want[c.Name])
		}
	}
}

func TestProbes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		build  func(*config.Config, paths.Paths) Component
		want   Probe
		url    string
	}{
		{
			name: "apiserver", mutate: func(*config.Config) {}, build: APIServer,
			want: Probe{SchemeHTTPS, "192.168.0.10", 6443, "/livez", "/readyz", "/livez"},
			url:  "https://192.168.0.10:6443/readyz",
		},
		{
			name: "apiserver on all addresses",
			mutate: func(c *config.Config) {
				c.Init.LocalAPIEndpoint = config.APIEndpoint{AdvertiseAddress: "0.0.0.0", BindPort: 7443}
			},
			build: APIServer,
			want:  Probe{SchemeHTTPS, "", 7443, "/livez", "/readyz", "/livez"},
			url:   "https://127.0.0.1:7443/readyz",
		},
		{
			name: "apiserver secure-port extraArg",
			mutate: func(c *config.Config) {
				c.Cluster.APIServer.ExtraArgs = []config.Arg{{Name: "secure-port", Value: "8443"}}
			},
			build: APIServer,
			want:  Probe{SchemeHTTPS, "192.168.0.10", 8443, "/livez", "/readyz", "/livez"},
			url:   "https://192.168.0.10:8443/readyz",
		},
		{
			name: "controller-manager", mutate: func(*config.Config) {}, build: ControllerManager,
			want: Probe{SchemeHTTPS, "127.0.0.1", 10257, "/healthz", "", "/healthz"},
			url:  "https://127.0.0.1:10257/healthz",
		},
		{
			name: "controller-manager bind-address and port",
			mutate: func(c *config.Config) {
				c.Kubestrap.ControllerManager.SecurePort = 20257
				c.Cluster.ControllerManager.ExtraArgs = []config.Arg{{Name: "bind-address", Value: "10.0.0.7"}}
			},
			build: ControllerManager,
			want:  Probe{SchemeHTTPS, "10.0.0.7", 20257, "/healthz", "", "/healthz"},
			url:   "https://10.0.0.7:20257/healthz",
		},
		{
			name: "scheduler on all addresses",
			mutate: func(c *config.Config) {
				c.Cluster.Scheduler.ExtraArgs = []config.Arg{{Name: "bind-address", Value: "::"}}
			},
			build: Scheduler,
			want:  Probe{SchemeHTTPS, "", 10259, "/livez", "/readyz", "/livez"},
			url:   "https://127.0.0.1:10259/readyz",
		},
		{
			name: "etcd", mutate: func(*config.Config) {}, build: Etcd,
			want: Probe{SchemeHTTP, "127.0.0.1", 2381, "/livez", "/readyz", "/readyz"},
			url:  "http://127.0.0.1:2381/readyz",
		},
		{
			name: "etcd listen-metrics-urls override",
			mutate: func(c *config.Config) {
				c.Cluster.Etcd.Local.ExtraArgs = []config.Arg{{Name: "listen-metrics-urls", Value: "https://10.0.0.5:9999,http://127.0.0.1:2381"}}
			},
			build: Etcd,
			want:  Probe{SchemeHTTPS, "10.0.0.5", 9999, "/livez", "/readyz", "/readyz"},
			url:   "https://10.0.0.5:9999/readyz",
		},
		{
			name: "etcd custom metrics port",
			mutate: func(c *config.Config) {
				c.Kubestrap.Etcd.MetricsPort = 12381
			},
			build: Etcd,
			want:  Probe{SchemeHTTP, "127.0.0.1", 12381, "/livez", "/readyz", "/readyz"},
			url:   "http://127.0.0.1:12381/readyz",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig()
			tc.mutate(cfg)
			c := tc.build(cfg, paths.MustUnder("/"))
			if c.Health != tc.want {
				t.Errorf("probe = %+v, want %+v", c.Health, tc.want)
			}
			if got := c.HealthURL(); got != tc.url {
				t.Errorf("HealthURL = %s, want %s", got, tc.url)
			}
		})
	}
}

// TestPathsUnderRoot: every file path kubestrap puts in a flag lives under the root dir.
// extraArgs values are the user's, passed verbatim.
func TestPathsUnderRoot(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder("/tmp/x")
	for _, cfg := range []*config.Config{baseConfig(), customConfig(), laptopConfig()} {
		user := map[string]bool{}
		for _, a := range slices.Concat(cfg.Cluster.APIServer.ExtraArgs, cfg.Cluster.ControllerManager.ExtraArgs, cfg.Cluster.Scheduler.ExtraArgs) {
			user[a.Name] = true
		}
		for _, c := range ControlPlane(cfg, p) {
			for name, v := range ArgMap(c.Args) {
				if user[name] {
					continue
				}
				for _, part := range strings.Split(v, ",") {
					if strings.HasPrefix(part, "/") && !p.Contains(part) {
						t.Errorf("%s --%s=%s: %s is outside the root dir", c.Name, name, v, part)
					}
				}
			}
		}
	}
	got := ArgMap(APIServer(baseConfig(), p).Args)["client-ca-file"]
	if want := "/tmp/x/etc/kubernetes/pki/ca.crt"; got != want {
		t.Errorf("--client-ca-file=%s, want %s", got, want)
	}
}

func TestControlPlaneOrder(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder("/")
	names := func(cs []Component) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	if got, want := names(ControlPlane(baseConfig(), p)), []string{EtcdName, APIServerName, ControllerManagerName, SchedulerName, CSRApproverName}; !slices.Equal(got, want) {
		t.Errorf("local etcd: %q, want %q", got, want)
	}
	if got, want := names(ControlPlane(customConfig(), p)), []string{APIServerName, ControllerManagerName, SchedulerName, CSRApproverName}; !slices.Equal(got, want) {
		t.Errorf("external etcd: %q, want %q", got, want)
	}
	off := baseConfig()
	off.Kubestrap.CSRApprover.Disabled = true
	if got, want := names(ControlPlane(off, p)), []string{EtcdName, APIServerName, ControllerManagerName, SchedulerName}; !slices.Equal(got, want) {
		t.Errorf("csrApprover.disabled: %q, want %q", got, want)
	}
}

func TestArgMap(t *testing.T) {
	t.Parallel()
	got := ArgMap([]string{"--a=1", "--b=x=y", "--c=", "--flag", "--a=2"})
	want := map[string]string{"a": "2", "b": "x=y", "c": "", "flag": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ArgMap = %v, want %v", got, want)
	}
}

func BenchmarkControlPlaneArgs(b *testing.B) {
	cfg, p := customConfig(), paths.MustUnder("/tmp/root")
	cfg.Cluster.Etcd = config.Etcd{Local: &config.LocalEtcd{DataDir: "/var/lib/etcd"}}
	b.ReportAllocs()
	for b.Loop() {
		if len(ControlPlane(cfg, p)) != 5 {
			b.Fatal("want five components")
		}
	}
}

// A member joining an existing cluster (join --control-plane) starts from that cluster's members
// with initial-cluster-state=existing; the first member (init) has itself alone and no state flag.
func TestEtcdJoiningMember(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	first := ArgMap(Etcd(cfg, paths.MustUnder("/")).Args)
	if _, ok := first["initial-cluster-state"]; ok || first["initial-cluster"] != cfg.NodeName()+"=https://192.168.0.10:2380" {
		t.Errorf("first member: initial-cluster %q, initial-cluster-state %q", first["initial-cluster"], first["initial-cluster-state"])
	}
	cfg.EtcdInitialCluster = "cp1=https://10.0.0.11:2380," + cfg.NodeName() + "=https://192.168.0.10:2380"
	joining := ArgMap(Etcd(cfg, paths.MustUnder("/")).Args)
	if joining["initial-cluster"] != cfg.EtcdInitialCluster || joining["initial-cluster-state"] != "existing" {
		t.Errorf("joining member: initial-cluster %q, initial-cluster-state %q", joining["initial-cluster"], joining["initial-cluster-state"])
	}
	// Everything else is the same member.
	delete(first, "initial-cluster")
	delete(joining, "initial-cluster")
	delete(joining, "initial-cluster-state")
	if !maps.Equal(first, joining) {
		t.Errorf("the joining member's other flags differ:\n%v\n%v", first, joining)
	}
}
