package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubestrap/kubestrap/internal/pki"
)

const clusterConfigOffset = 33000

// TestCommandsUseClusterConfig inits a cluster from a configuration file with non-default
// settings and then runs kubeconfig user, token create --print-join-command and certs renew
// WITHOUT --config: first against the running cluster (kubeadm-config ConfigMap), then with the
// control plane stopped (the configuration init saved). Every result must carry the cluster's
// settings, not the defaults.
func TestCommandsUseClusterConfig(t *testing.T) {
	root := t.TempDir()
	t.Cleanup(func() { cleanupRoot(t, root) })
	port := 6443 + clusterConfigOffset
	cfgFile := writeConfig(t, t.TempDir(), clusterConfigOffset)
	data, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	cluster := `kind: ClusterConfiguration
clusterName: e2e-prod
controlPlaneEndpoint: localhost
apiServer:
  certSANs: [e2e.example.test]
certificateValidityPeriod: 200h
encryptionAlgorithm: ECDSA-P384
`
	data = []byte(strings.Replace(string(data), "kind: ClusterConfiguration\n", cluster, 1))
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "init", "--root-dir", root, "--config", cfgFile)

	saved := filepath.Join(root, "etc/kubernetes/kubestrap/config.yaml")
	if fi, err := os.Stat(saved); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved configuration %s: %v %v", saved, fi, err)
	}
	server := "https://localhost:" + strconv.Itoa(port)

	checkCert := func(what string, cert *x509.Certificate, start time.Time) {
		t.Helper()
		if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
			t.Errorf("%s: key %T, want the cluster's ECDSA-P384", what, cert.PublicKey)
		}
		// Generous bounds: the machine is shared and slow; the default would be 8760h.
		if d := cert.NotAfter.Sub(start); d < 199*time.Hour || d > 201*time.Hour {
			t.Errorf("%s: valid until %s, want about 200h from now", what, cert.NotAfter)
		}
	}
	kubeconfigUser := func(name, wantSource string) {
		t.Helper()
		start := time.Now()
		r := mustRun(t, "kubeconfig", "user", "--client-name", name, "--root-dir", root)
		if !strings.Contains(r.stderr, wantSource) {
			t.Errorf("kubeconfig user: stderr %q lacks %q", r.stderr, wantSource)
		}
		kc, err := clientcmd.Load([]byte(r.stdout))
		if err != nil {
			t.Fatal(err)
		}
		if c := kc.Clusters["e2e-prod"]; c == nil || c.Server != server || kc.CurrentContext != name+"@e2e-prod" {
			t.Fatalf("kubeconfig user: clusters %v, context %q; want e2e-prod at %s", kc.Clusters, kc.CurrentContext, server)
		}
		cert, err := pki.ParseCertPEM(kc.AuthInfos[name].ClientCertificateData)
		if err != nil {
			t.Fatal(err)
		}
		checkCert("kubeconfig user's certificate", cert, start)
	}
	renewAPIServer := func(wantSource string) {
		t.Helper()
		start := time.Now()
		r := mustRun(t, "certs", "renew", "apiserver", "--root-dir", root)
		if !strings.Contains(r.stderr, wantSource) {
			t.Errorf("certs renew: stderr %q lacks %q", r.stderr, wantSource)
		}
		cert, err := pki.ReadCert(filepath.Join(root, "etc/kubernetes/pki/apiserver.crt"))
		if err != nil {
			t.Fatal(err)
		}
		checkCert("renewed apiserver.crt", cert, start)
		found := false
		for _, n := range cert.DNSNames {
			found = found || n == "e2e.example.test"
		}
		if !found {
			t.Errorf("renewed apiserver.crt lost the extra SAN: %v", cert.DNSNames)
		}
		mustRun(t, "certs", "check-expiration", "--root-dir", root)
	}

	// With the API server up: the ConfigMap.
	fromCluster := "Reading configuration from the cluster..."
	kubeconfigUser("e2e-user", fromCluster)
	// The new user's certificate authenticates against the cluster.
	r := mustRun(t, "kubeconfig", "user", "--client-name", "e2e-user", "--root-dir", root)
	rc, err := clientcmd.RESTConfigFromKubeConfig([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || review.Status.UserInfo.Username != "e2e-user" {
		t.Errorf("the kubeconfig user's identity: %v %v", review, err)
	}

	r = mustRun(t, "token", "create", "--print-join-command", "--root-dir", root)
	if want := "kubestrap join localhost:" + strconv.Itoa(port) + " --token "; !strings.HasPrefix(r.stdout, want) {
		t.Errorf("token create --print-join-command: %q, want prefix %q", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "[token] "+fromCluster) {
		t.Errorf("token create: stderr %q", r.stderr)
	}
	renewAPIServer("[certs] " + fromCluster)

	// With the control plane stopped: the saved configuration.
	mustRun(t, "stop", "--root-dir", root)
	fromSaved := "Using the configuration saved by init in " + saved
	kubeconfigUser("e2e-offline", fromSaved)
	renewAPIServer(fromSaved)

	mustRun(t, "reset", "--root-dir", root, "--force")
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("reset left %s: %v", saved, err)
	}
}
