package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/clusterconfig"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
)

type fixedHost struct{}

func (fixedHost) Hostname() (string, error)    { return "cp-1", nil }
func (fixedHost) DefaultIPv4() (net.IP, error) { return net.ParseIP("192.168.7.7"), nil }

// nonDefaultCluster is a cluster set up with a configuration file that changes what the commands
// after init depend on: its name, endpoint and port, extra SANs, and the validity and algorithm of
// the certificates it issues.
func nonDefaultCluster(t *testing.T) (paths.Paths, *config.Config) {
	t.Helper()
	cfg, err := config.LoadInitData("test", []byte(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 192.168.7.7
  bindPort: 7443
nodeRegistration:
  name: cp-1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: prod
controlPlaneEndpoint: cp.example.test
apiServer:
  certSANs: [extra.example.test]
certificateValidityPeriod: 100h
encryptionAlgorithm: ECDSA-P384
`), config.Overrides{}, fixedHost{})
	if err != nil {
		t.Fatal(err)
	}
	p := paths.MustUnder(t.TempDir())
	if err := pki.EnsureCerts(cfg, p, nil, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := kubeconfig.EnsureKubeconfigs(cfg, p, nil, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := clusterconfig.Save(fsutil.NewDisk(nil), cfg, p, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	return p, cfg
}

// runAgainst runs the CLI against a fake cluster holding cfg's kubeadm-config ConfigMap.
func runAgainst(t *testing.T, cfg *config.Config, args ...string) (string, string) {
	t.Helper()
	doc, err := config.MarshalCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fakeC := fake.NewClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrap.KubeadmConfigConfigMap, Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{bootstrap.ClusterConfigKey: string(doc)},
	})
	c := kubeclienttest.Wrap(fakeC)
	var out, errOut bytes.Buffer
	g := &globalOptions{In: strings.NewReader(""), Out: &out, Err: &errOut, UID: os.Geteuid(),
		newClusterClient: func(string, time.Duration) (kubeclient.Interface, error) { return c, nil }}
	if code := execute(newRootCommand(g), args, &errOut); code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, errOut.String())
	}
	return out.String(), errOut.String()
}

func checkIssued(t *testing.T, what string, cert *x509.Certificate, start time.Time) {
	t.Helper()
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Errorf("%s: key %T, want the cluster's ECDSA-P384", what, cert.PublicKey)
	}
	if d := cert.NotAfter.Sub(start); d < 100*time.Hour-time.Minute || d > 100*time.Hour+time.Minute {
		t.Errorf("%s: valid until %s, want the cluster's 100h from now", what, cert.NotAfter)
	}
}

// TestCommandsAfterInitUseClusterConfig: without --config, certs renew, kubeconfig user and token
// create --print-join-command use the cluster's settings, not the defaults.
func TestCommandsAfterInitUseClusterConfig(t *testing.T) {
	t.Parallel()
	p, cfg := nonDefaultCluster(t)
	root := "--root-dir=" + p.Root()
	start := time.Now()

	_, stderr := runAgainst(t, cfg, "certs", "renew", "apiserver", root)
	if !strings.Contains(stderr, "[certs] Reading configuration from the cluster...") {
		t.Errorf("certs renew did not say where its configuration came from:\n%s", stderr)
	}
	cert, err := pki.ReadCert(filepath.Join(p.CertDir(""), "apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	checkIssued(t, "renewed apiserver.crt", cert, start)

	out, _ := runAgainst(t, cfg, "kubeconfig", "user", "--client-name=jane", root)
	kc, err := clientcmd.Load([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	cl, ok := kc.Clusters["prod"]
	if !ok || cl.Server != "https://cp.example.test:7443" {
		t.Errorf("kubeconfig user: clusters %v, want prod at https://cp.example.test:7443", kc.Clusters)
	}
	if ctx := kc.Contexts[kc.CurrentContext]; ctx == nil || kc.CurrentContext != "jane@prod" {
		t.Errorf("kubeconfig user: current context %q", kc.CurrentContext)
	}
	userCert, err := pki.ParseCertPEM(kc.AuthInfos["jane"].ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	checkIssued(t, "kubeconfig user's certificate", userCert, start)

	// A kubeconfig that reaches the API server some other way (a tunnel): the join command
	// still names the cluster's endpoint, which is what workers must use.
	admin, err := clientcmd.LoadFromFile(p.Kubeconfig("admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range admin.Clusters {
		c.Server = "https://127.0.0.1:16443"
	}
	tunnel := filepath.Join(p.Root(), "tunnel.conf")
	if err := clientcmd.WriteToFile(*admin, tunnel); err != nil {
		t.Fatal(err)
	}
	out, _ = runAgainst(t, cfg, "token", "create", "abcdef.0123456789abcdef", "--print-join-command", "--dry-run", "--kubeconfig="+tunnel, root)
	ca, err := pki.ReadCert(filepath.Join(p.CertDir(""), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	want := "kubestrap join cp.example.test:7443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash " + pki.PublicKeyPin(ca) + "\n"
	if out != want {
		t.Errorf("token create --print-join-command:\n got %q\nwant %q", out, want)
	}
}
