package addons

import (
	"context"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"github.com/kubestrap/kubestrap/internal/kubelet"
)

func TestImages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		set             func(*config.Config)
		coredns, kproxy string
	}{
		{"defaults", func(*config.Config) {}, "registry.k8s.io/coredns/coredns:v1.14.6", "registry.k8s.io/kube-proxy:v1.37.2"},
		{"mirror", func(c *config.Config) { c.Cluster.ImageRepository = "mirror.example/k8s" },
			"mirror.example/k8s/coredns:v1.14.6", "mirror.example/k8s/kube-proxy:v1.37.2"},
		{"dns repository and tag", func(c *config.Config) {
			c.Cluster.DNS.ImageRepository, c.Cluster.DNS.ImageTag = "dns.example", "v1.99.0"
		}, "dns.example/coredns:v1.99.0", "registry.k8s.io/kube-proxy:v1.37.2"},
		{"older control plane", func(c *config.Config) { c.Cluster.KubernetesVersion = "v1.36.4" },
			"registry.k8s.io/coredns/coredns:v1.14.6", "registry.k8s.io/kube-proxy:v1.36.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configtest.Init("10.0.0.10", "cp-1")
			tc.set(cfg)
			dns, err := CoreDNSObjects(cfg)
			if err != nil {
				t.Fatal(err)
			}
			proxy, err := KubeProxyObjects(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := dns.Deployment.Spec.Template.Spec.Containers[0].Image; got != tc.coredns {
				t.Errorf("CoreDNS image %q, want %q", got, tc.coredns)
			}
			if got := proxy.DaemonSet.Spec.Template.Spec.Containers[0].Image; got != tc.kproxy {
				t.Errorf("kube-proxy image %q, want %q", got, tc.kproxy)
			}
		})
	}
}

// The kube-dns Service address is the kubelets' clusterDNS for every service subnet, and the
// Corefile serves the configured domain.
func TestCoreDNSFollowsNetworking(t *testing.T) {
	t.Parallel()
	for _, subnet := range []string{"10.96.0.0/12", "172.20.0.0/16", "fd00:10::/108"} {
		cfg := configtest.Init("10.0.0.10", "cp-1")
		cfg.Cluster.Networking.ServiceSubnet = subnet
		cfg.Cluster.Networking.DNSDomain = "corp.internal"
		o, err := CoreDNSObjects(cfg)
		if err != nil {
			t.Fatal(err)
		}
		kc, err := kubelet.Configuration(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if o.Service.Spec.ClusterIP != kc.ClusterDNS[0] {
			t.Errorf("%s: Service kube-dns at %s, kubelets resolve through %s", subnet, o.Service.Spec.ClusterIP, kc.ClusterDNS[0])
		}
		_, n, _ := net.ParseCIDR(subnet)
		if ip := net.ParseIP(o.Service.Spec.ClusterIP); ip == nil || !n.Contains(ip) || ip[len(ip)-1] != 10 {
			t.Errorf("%s: Service kube-dns at %s, want the tenth address", subnet, o.Service.Spec.ClusterIP)
		}
		for _, want := range []string{"kubernetes corp.internal in-addr.arpa ip6.arpa {", "disable success corp.internal"} {
			if !strings.Contains(o.ConfigMap.Data[CorefileKey], want) {
				t.Errorf("Corefile lacks %q:\n%s", want, o.ConfigMap.Data[CorefileKey])
			}
		}
	}
}

// kubeadm's defaults fill only what the KubeProxyConfiguration document leaves out.
func TestKubeProxyConfiguration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc, advertise, podSubnet string
		check                           func(t *testing.T, mode, bind, cidr, kubeconfig string)
	}{
		{"no document", "", "10.0.0.10", "", func(t *testing.T, mode, bind, cidr, kubeconfig string) {
			if mode != "iptables" || bind != "0.0.0.0" || cidr != "" || kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" {
				t.Errorf("got mode %q bind %q cidr %q kubeconfig %q", mode, bind, cidr, kubeconfig)
			}
		}},
		{"pod subnet and IPv6", "", "fd00::10", "10.244.0.0/16", func(t *testing.T, mode, bind, cidr, _ string) {
			if bind != "::" || cidr != "10.244.0.0/16" {
				t.Errorf("got bind %q cidr %q", bind, cidr)
			}
		}},
		{"user document wins", `{"mode":"nftables","clusterCIDR":"10.1.0.0/16","bindAddress":"10.0.0.10"}`, "10.0.0.10", "10.244.0.0/16",
			func(t *testing.T, mode, bind, cidr, kubeconfig string) {
				if mode != "nftables" || bind != "10.0.0.10" || cidr != "10.1.0.0/16" || kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" {
					t.Errorf("got mode %q bind %q cidr %q kubeconfig %q", mode, bind, cidr, kubeconfig)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configtest.Init("10.0.0.10", "cp-1")
			cfg.Init.LocalAPIEndpoint.AdvertiseAddress = tc.advertise
			cfg.Cluster.Networking.PodSubnet = tc.podSubnet
			if tc.doc != "" {
				cfg.KubeProxyConfiguration = []byte(tc.doc)
			}
			kp, err := KubeProxyConfiguration(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if kp.APIVersion != config.KubeProxyConfigAPIVer || kp.Kind != config.KindKubeProxyConfig {
				t.Errorf("typed as %s %s", kp.APIVersion, kp.Kind)
			}
			tc.check(t, string(kp.Mode), kp.BindAddress, kp.ClusterCIDR, kp.ClientConnection.Kubeconfig)
		})
	}
}

// Re-running the addon phases keeps what a user changed in the fields kubestrap does not own
// (kubernetes/kubeadm#3033, kubernetes/kubernetes#96833) and restores what it does own.
func TestReRunKeepsUserEdits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fakeC := fake.NewClientset()
	c := kubeclienttest.Wrap(fakeC)
	cfg := configtest.Init("10.0.0.10", "cp-1")
	ensure := func() {
		t.Helper()
		dns, err := CoreDNSObjects(cfg)
		if err != nil {
			t.Fatal(err)
		}
		proxy, err := KubeProxyObjects(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := EnsureCoreDNS(ctx, c, dns); err != nil {
			t.Fatal(err)
		}
		if err := EnsureKubeProxy(ctx, c, proxy); err != nil {
			t.Fatal(err)
		}
	}
	ensure()

	// The user, with kubectl: a Corefile of their own, three replicas and more memory for
	// CoreDNS, resources for kube-proxy, and a (wrong) image on both.
	sys := metav1.NamespaceSystem
	user := metav1.UpdateOptions{FieldManager: "kubectl-edit"}
	cm, err := c.CoreV1().ConfigMaps(sys).Get(ctx, CoreDNSName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const userCorefile = ".:53 {\n    forward . 192.0.2.53\n}\n"
	cm.Data[CorefileKey] = userCorefile
	if _, err := c.CoreV1().ConfigMaps(sys).Update(ctx, cm, user); err != nil {
		t.Fatal(err)
	}
	d, err := c.AppsV1().Deployments(sys).Get(ctx, CoreDNSName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Replicas = ptr.To[int32](3)
	d.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("512Mi")
	d.Spec.Template.Spec.Containers[0].Image = "example/coredns:hacked"
	if _, err := c.AppsV1().Deployments(sys).Update(ctx, d, user); err != nil {
		t.Fatal(err)
	}
	ds, err := c.AppsV1().DaemonSets(sys).Get(ctx, KubeProxyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")},
	}
	ds.Spec.Template.Spec.Containers[0].Image = "example/kube-proxy:hacked"
	if _, err := c.AppsV1().DaemonSets(sys).Update(ctx, ds, user); err != nil {
		t.Fatal(err)
	}

	ensure()

	cm, _ = c.CoreV1().ConfigMaps(sys).Get(ctx, CoreDNSName, metav1.GetOptions{})
	if cm.Data[CorefileKey] != userCorefile {
		t.Errorf("the user's Corefile was replaced:\n%s", cm.Data[CorefileKey])
	}
	d, _ = c.AppsV1().Deployments(sys).Get(ctx, CoreDNSName, metav1.GetOptions{})
	dc := d.Spec.Template.Spec.Containers[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("CoreDNS replicas = %d, want the user's 3", ptr.Deref(d.Spec.Replicas, -1))
	}
	if got := dc.Resources.Limits[corev1.ResourceMemory]; got.String() != "512Mi" {
		t.Errorf("CoreDNS memory limit = %s, want the user's 512Mi", got.String())
	}
	if got := dc.Resources.Requests[corev1.ResourceCPU]; got.String() != "100m" {
		t.Errorf("CoreDNS cpu request = %s, want kubestrap's 100m, which the user did not change", got.String())
	}
	if want := CoreDNSImage(cfg); dc.Image != want {
		t.Errorf("CoreDNS image %q, want kubestrap's %q back", dc.Image, want)
	}
	ds, _ = c.AppsV1().DaemonSets(sys).Get(ctx, KubeProxyName, metav1.GetOptions{})
	pc := ds.Spec.Template.Spec.Containers[0]
	if got := pc.Resources.Requests[corev1.ResourceCPU]; got.String() != "50m" {
		t.Errorf("kube-proxy cpu request = %s, want the user's 50m", got.String())
	}
	if want := KubeProxyImage(cfg); pc.Image != want {
		t.Errorf("kube-proxy image %q, want kubestrap's %q back", pc.Image, want)
	}
	assertManagedBy(t, c, kubeclient.FieldManager)
}

func assertManagedBy(t *testing.T, c kubeclient.Interface, manager string) {
	t.Helper()
	ds, err := c.AppsV1().DaemonSets(metav1.NamespaceSystem).Get(context.Background(), KubeProxyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ds.ManagedFields {
		if m.Manager == manager && m.Operation == metav1.ManagedFieldsOperationApply {
			return
		}
	}
	t.Errorf("DaemonSet kube-proxy has no fields applied by %q: %+v", manager, ds.ManagedFields)
}

// A new Deployment gets kubeadm's replicas and resources; OwnedDeployment, what every run
// applies, holds neither.
func TestOwnedDeployment(t *testing.T) {
	t.Parallel()
	o, err := CoreDNSObjects(configtest.Init("10.0.0.10", "cp-1"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Deployment.Spec.Replicas == nil || *o.Deployment.Spec.Replicas != 2 || o.Deployment.Spec.Template.Spec.Containers[0].Resources.Requests == nil {
		t.Fatalf("the created Deployment lacks kubeadm's replicas or resources: %+v", o.Deployment.Spec)
	}
	owned := OwnedDeployment(o.Deployment)
	_, data, err := kubeclient.ApplyConfiguration(owned)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"replicas"`, `"resources"`} {
		if strings.Contains(string(data), field) {
			t.Errorf("the applied Deployment claims %s:\n%s", field, data)
		}
	}
	if o.Deployment.Spec.Replicas == nil {
		t.Error("OwnedDeployment changed its argument")
	}
}
