package clusterconfig

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// testHost is a machine whose detected values differ from every test configuration, so a test
// can tell detected values from configured ones.
type testHost struct{}

func (testHost) Hostname() (string, error)    { return "Detected-Host", nil }
func (testHost) DefaultIPv4() (net.IP, error) { return net.ParseIP("10.9.9.9"), nil }

// initConfig is what init would have run with: non-default on both the cluster-wide and the
// node's side.
func initConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.LoadInitData("test", []byte(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 192.168.7.7
  bindPort: 7443
nodeRegistration:
  name: cp-1
bootstrapTokens:
- token: abcdef.0123456789abcdef
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: saved-name
controlPlaneEndpoint: cp.example.test
apiServer:
  certSANs: [extra.example.test]
certificateValidityPeriod: 100h
---
apiVersion: kubestrap.io/v1alpha1
kind: KubestrapConfiguration
etcd:
  clientPort: 12379
`), config.Overrides{}, testHost{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// rootWithAdminConf is a root dir with an admin.conf, so that Load asks the (fake) cluster.
func rootWithAdminConf(t *testing.T) paths.Paths {
	t.Helper()
	p := paths.MustUnder(t.TempDir())
	if err := os.MkdirAll(p.KubernetesDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Kubeconfig("admin.conf"), []byte("stand-in: the fake client never reads it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func clusterConfigMap(t *testing.T, cfg *config.Config) *corev1.ConfigMap {
	t.Helper()
	doc, err := config.MarshalCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrap.KubeadmConfigConfigMap, Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{bootstrap.ClusterConfigKey: string(doc)},
	}
}

func clientOf(c *fake.Clientset) func(string, time.Duration) (kubeclient.Interface, error) {
	return func(string, time.Duration) (kubeclient.Interface, error) { return kubeclienttest.Wrap(c), nil }
}

// unreachable is a cluster whose API server does not answer.
func unreachable() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("dial tcp 192.168.7.7:7443: connect: connection refused")
	})
	return c
}

func TestLoadFromClusterWithSavedNodePart(t *testing.T) {
	t.Parallel()
	p := rootWithAdminConf(t)
	saved := initConfig(t)
	if _, err := Save(fsutil.NewDisk(nil), saved, p, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// The cluster's own copy differs from the saved file: the ConfigMap wins for the
	// cluster-wide settings (it is what the cluster runs with, e.g. after an upgrade).
	inCluster := initConfig(t)
	inCluster.Cluster.ClusterName = "from-cluster"
	var log bytes.Buffer
	l, err := Load(context.Background(), Options{
		Paths: p, Host: testHost{}, NewClient: clientOf(fake.NewClientset(clusterConfigMap(t, inCluster))),
		Log: &log, Prefix: "[certs]",
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Source != SourceCluster || l.NodeDetected {
		t.Errorf("source %s, node detected %v; want cluster with the saved node part", l.Source, l.NodeDetected)
	}
	c := l.Config
	if c.Cluster.ClusterName != "from-cluster" {
		t.Errorf("clusterName %q, want the ConfigMap's", c.Cluster.ClusterName)
	}
	if got := c.ControlPlaneURL(); got != "https://cp.example.test:7443" {
		t.Errorf("control-plane URL %s", got)
	}
	if c.AdvertiseAddress() != "192.168.7.7" || c.NodeName() != "cp-1" || c.EtcdClientPort() != 12379 {
		t.Errorf("node part %s %s %d, want the saved one", c.AdvertiseAddress(), c.NodeName(), c.EtcdClientPort())
	}
	if c.CertValidity() != 100*time.Hour {
		t.Errorf("certificate validity %s", c.CertValidity())
	}
	if got := log.String(); !strings.Contains(got, "[certs] Reading configuration from the cluster...") {
		t.Errorf("log %q does not say the cluster was read", got)
	}
}

func TestLoadFromClusterWithoutSavedFile(t *testing.T) {
	t.Parallel()
	p := rootWithAdminConf(t)
	var log bytes.Buffer
	l, err := Load(context.Background(), Options{
		Paths: p, Host: testHost{}, NewClient: clientOf(fake.NewClientset(clusterConfigMap(t, initConfig(t)))),
		Log: &log, Prefix: "[certs]",
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Source != SourceCluster || !l.NodeDetected {
		t.Errorf("source %s, node detected %v", l.Source, l.NodeDetected)
	}
	if l.Config.Cluster.ClusterName != "saved-name" || l.Config.AdvertiseAddress() != "10.9.9.9" || l.Config.NodeName() != "detected-host" {
		t.Errorf("got %s %s %s", l.Config.Cluster.ClusterName, l.Config.AdvertiseAddress(), l.Config.NodeName())
	}
	if !strings.Contains(log.String(), "WARNING: "+p.SavedConfig()+" not found") {
		t.Errorf("log %q does not say the node's part was detected", log.String())
	}
}

func TestLoadFallsBackToSavedFileWhenAPIDoesNotAnswer(t *testing.T) {
	t.Parallel()
	p := rootWithAdminConf(t)
	if _, err := Save(fsutil.NewDisk(nil), initConfig(t), p, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	l, err := Load(context.Background(), Options{Paths: p, Host: testHost{}, NewClient: clientOf(unreachable()), Log: &log, Prefix: "[certs]"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Source != SourceSaved {
		t.Fatalf("source %s, want saved", l.Source)
	}
	if l.Config.Cluster.ClusterName != "saved-name" || l.Config.ControlPlaneURL() != "https://cp.example.test:7443" || l.Config.NodeName() != "cp-1" {
		t.Errorf("got %s %s %s", l.Config.Cluster.ClusterName, l.Config.ControlPlaneURL(), l.Config.NodeName())
	}
	for _, want := range []string{"Using the configuration saved by init in " + p.SavedConfig(), "connection refused"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log %q lacks %q", log.String(), want)
		}
	}
}

func TestLoadWithoutAnySource(t *testing.T) {
	t.Parallel()
	// No admin.conf, nothing saved: the defaults, said to be.
	p := paths.MustUnder(t.TempDir())
	var log bytes.Buffer
	l, err := Load(context.Background(), Options{Paths: p, Host: testHost{}, Log: &log, Prefix: "[kubeconfig]"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Source != SourceDefaults || l.Config.Cluster.ClusterName != "kubernetes" || l.Config.AdvertiseAddress() != "10.9.9.9" {
		t.Errorf("got %s %s %s", l.Source, l.Config.Cluster.ClusterName, l.Config.AdvertiseAddress())
	}
	if !strings.Contains(log.String(), "[kubeconfig] WARNING: no configuration of this cluster found") || !strings.Contains(log.String(), "admin.conf not found") {
		t.Errorf("log %q", log.String())
	}
	// A missing ConfigMap is a reason to fall back too; NoDefaults leaves the choice to the caller.
	p = rootWithAdminConf(t)
	l, err = Load(context.Background(), Options{Paths: p, Host: testHost{}, NewClient: clientOf(fake.NewClientset()), NoDefaults: true})
	if err != nil || l.Config != nil || l.Source != SourceDefaults {
		t.Errorf("NoDefaults: %+v %v", l, err)
	}
}

func TestLoadConfigFileWins(t *testing.T) {
	t.Parallel()
	p := rootWithAdminConf(t)
	file := p.Root() + "/my.yaml"
	if err := os.WriteFile(file, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: from-flag\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	asked := false
	c := fake.NewClientset()
	c.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		asked = true
		return false, nil, nil
	})
	l, err := Load(context.Background(), Options{ConfigFile: file, Paths: p, Host: testHost{}, NewClient: clientOf(c)})
	if err != nil {
		t.Fatal(err)
	}
	if l.Source != SourceFile || l.Config.Cluster.ClusterName != "from-flag" || asked {
		t.Errorf("source %s, clusterName %s, cluster asked %v", l.Source, l.Config.Cluster.ClusterName, asked)
	}
}

func TestLoadRejectsBrokenSources(t *testing.T) {
	t.Parallel()
	p := rootWithAdminConf(t)
	bad := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrap.KubeadmConfigConfigMap, Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{bootstrap.ClusterConfigKey: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterNmae: typo\n"},
	}
	_, err := Load(context.Background(), Options{Paths: p, Host: testHost{}, NewClient: clientOf(fake.NewClientset(bad))})
	if err == nil || !strings.Contains(err.Error(), "ConfigMap kube-system/kubeadm-config") || !strings.Contains(err.Error(), "clusterNmae") {
		t.Errorf("broken ConfigMap: %v", err)
	}
	if err := os.MkdirAll(p.KubestrapConfigDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.SavedConfig(), []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(context.Background(), Options{Paths: p, Host: testHost{}, NewClient: clientOf(unreachable())})
	if err == nil || !strings.Contains(err.Error(), p.SavedConfig()) || !strings.Contains(err.Error(), "--config") {
		t.Errorf("broken saved file: %v", err)
	}
}

func TestSave(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	cfg := initConfig(t)
	var log bytes.Buffer
	if wrote, err := Save(fsutil.NewDryRun(&log), cfg, p, &log); err != nil || wrote {
		t.Fatalf("dry run: %v %v", wrote, err)
	}
	if _, err := os.Stat(p.SavedConfig()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run wrote %s", p.SavedConfig())
	}
	if !strings.Contains(log.String(), "[dryrun] Would write file "+p.SavedConfig()) {
		t.Errorf("dry-run log %q", log.String())
	}
	if wrote, err := Save(fsutil.NewDisk(nil), cfg, p, &log); err != nil || !wrote {
		t.Fatalf("first save: %v %v", wrote, err)
	}
	fi, err := os.Stat(p.SavedConfig())
	if err != nil || fi.Mode().Perm() != SavedFileMode {
		t.Fatalf("saved file: %v %v", fi, err)
	}
	if di, err := os.Stat(p.KubestrapConfigDir()); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v", di, err)
	}
	data, _ := os.ReadFile(p.SavedConfig())
	if strings.Contains(string(data), "0123456789abcdef") {
		t.Error("the bootstrap token was saved")
	}
	// It loads back to the same configuration (tokens aside).
	back, err := config.LoadInitData(p.SavedConfig(), data, config.Overrides{}, testHost{})
	if err != nil {
		t.Fatal(err)
	}
	if back.ControlPlaneURL() != cfg.ControlPlaneURL() || back.NodeName() != cfg.NodeName() || back.Cluster.ClusterName != cfg.Cluster.ClusterName ||
		back.EtcdClientPort() != cfg.EtcdClientPort() || back.Cluster.APIServer.CertSANs[0] != "extra.example.test" {
		t.Errorf("round trip changed the configuration:\n%s", data)
	}
	// Unchanged: not rewritten (an atomic rewrite would be a new inode). Changed: rewritten.
	if wrote, err := Save(fsutil.NewDisk(nil), cfg, p, &log); err != nil || wrote {
		t.Errorf("unchanged save: %v %v", wrote, err)
	}
	if again, _ := os.Stat(p.SavedConfig()); !os.SameFile(fi, again) {
		t.Error("an unchanged configuration was rewritten")
	}
	cfg.Cluster.ClusterName = "renamed"
	if wrote, err := Save(fsutil.NewDisk(nil), cfg, p, &log); err != nil || !wrote {
		t.Errorf("changed save: %v %v", wrote, err)
	}
}
