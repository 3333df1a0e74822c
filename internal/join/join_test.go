package join

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/certificate"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/discovery"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"github.com/kubestrap/kubestrap/internal/kubelet"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
)

const (
	testServer = "https://10.0.0.1:6443"
	testToken  = "abcdef.0123456789abcdef"
)

// testCluster is a fake cluster: a CA, the ConfigMaps init uploads, and a CSR signer that
// approves (or denies) what the bootstrap identity submits.
type testCluster struct {
	t      *testing.T
	ca     *x509.Certificate
	caKey  crypto.Signer
	caPEM  []byte
	client *fake.Clientset
	// deny makes the signer deny every CSR; pending makes it never answer.
	deny, pending bool
	// csrs are the CSRs submitted.
	csrs []*certificatesv1.CertificateSigningRequest
}

func newTestCluster(t *testing.T, objects ...runtime.Object) *testCluster {
	t.Helper()
	key, err := pki.GenerateKey(config.AlgorithmECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, err := pki.NewSelfSignedCA(pki.CertConfig{CommonName: "kubernetes", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, key)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubelet.Configuration(&config.Config{Cluster: config.ClusterConfiguration{Networking: config.Networking{ServiceSubnet: "10.96.0.0/12", DNSDomain: "cluster.local"}}})
	if err != nil {
		t.Fatal(err)
	}
	kcData, err := kubelet.Marshal(kc)
	if err != nil {
		t.Fatal(err)
	}
	objects = append(objects,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: bootstrap.KubeletConfigConfigMap, Namespace: "kube-system"},
			Data: map[string]string{bootstrap.KubeletConfigKey: string(kcData)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: bootstrap.KubeadmConfigConfigMap, Namespace: "kube-system"},
			Data: map[string]string{bootstrap.ClusterConfigKey: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: ECDSA-P384\n"}},
	)
	c := &testCluster{t: t, ca: ca, caKey: key, caPEM: pki.EncodeCertPEM(ca), client: fake.NewClientset(objects...)}
	c.client.PrependReactor("create", "certificatesigningrequests", c.sign)
	return c
}

// sign plays the controller-manager: approve and sign (or deny) a CSR as it is created.
func (c *testCluster) sign(action k8stesting.Action) (bool, runtime.Object, error) {
	csr := action.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
	if csr.Name == "" {
		csr.Name = csr.GenerateName + "test"
	}
	c.csrs = append(c.csrs, csr.DeepCopy())
	if c.pending {
		return false, nil, nil
	}
	if c.deny {
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Reason: "Test"}}
		return false, nil, nil
	}
	block, _ := pem.Decode(csr.Spec.Request)
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return true, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: req.Subject.CommonName, Organization: req.Subject.Organization},
		NotBefore:    time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca, req.PublicKey, c.caKey)
	if err != nil {
		return true, nil, err
	}
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "AutoApproved"}}
	csr.Status.Certificate = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return false, nil, nil
}

func (c *testCluster) discover(context.Context) (*discovery.Result, error) {
	return &discovery.Result{Server: testServer, CAData: c.caPEM, CA: c.ca, Source: "test"}, nil
}

func joinConfig(t *testing.T) *config.JoinConfig {
	t.Helper()
	cfg, err := config.LoadJoinWith("", config.JoinOverrides{
		APIServerEndpoint: "10.0.0.1:6443", Token: testToken,
		CACertHashes: []string{"sha256:" + strings.Repeat("ab", 32)}, NodeName: "worker-1",
	}, config.SystemHost{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newTestJoin(t *testing.T, root string, c *testCluster, mutate func(*Options)) *Join {
	t.Helper()
	var log strings.Builder
	o := Options{
		Paths:     paths.MustUnder(root),
		Config:    joinConfig(t),
		Log:       &log,
		Discover:  c.discover,
		NewClient: func(*clientcmdapi.Config) (kubeclient.Interface, error) { return kubeclienttest.Wrap(c.client), nil },
		Hostname:  "host-1",
		// The address the kubelet would report; the machine's own would make tests depend on it.
		DefaultAddress: func() (string, error) { return "10.0.0.5", nil },
	}
	if mutate != nil {
		mutate(&o)
	}
	j, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("join log:\n%s", log.String())
		}
	})
	return j
}

// runAll runs the phases in order, as the CLI's runner does.
func runAll(ctx context.Context, j *Join) error {
	for _, phase := range []func(context.Context) error{j.Preflight, j.Discover, j.KubeletStart, j.TLSBootstrap, j.RecordAddresses} {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	j.Commit()
	return nil
}

// tree lists every path under root (relative), with "@" marking symlinks.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.Type()&fs.ModeSymlink != 0 {
			rel += "@"
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestJoinWritesNodeFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	c := newTestCluster(t)
	j := newTestJoin(t, root, c, nil)
	if err := runAll(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	p := paths.MustUnder(root)

	// kubelet.conf authenticates with the certificate file the kubelet's store uses, and trusts
	// the discovered CA at the discovered server.
	kc, err := clientcmd.LoadFromFile(p.Kubeconfig("kubelet.conf"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := kc.Contexts[kc.CurrentContext]
	if cl := kc.Clusters[ctx.Cluster]; cl.Server != testServer || string(cl.CertificateAuthorityData) != string(c.caPEM) {
		t.Errorf("kubelet.conf cluster = %+v", cl)
	}
	if ai := kc.AuthInfos[ctx.AuthInfo]; ai.ClientCertificate != p.KubeletClientCert() || ai.ClientKey != p.KubeletClientCert() {
		t.Errorf("kubelet.conf user = %+v, want client-certificate and client-key %s", ai, p.KubeletClientCert())
	}
	for path, want := range map[string]fs.FileMode{
		p.Kubeconfig("kubelet.conf"): 0o600, p.KubeletClientCert(): 0o600, filepath.Join(p.CertDir(""), "ca.crt"): 0o644,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("%s mode %o, want %o", path, got, want)
		}
	}
	pemData, err := os.ReadFile(p.KubeletClientCert())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKeyPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:worker-1" || strings.Join(cert.Subject.Organization, ",") != "system:nodes" {
		t.Errorf("certificate subject %v", cert.Subject)
	}
	if err := cert.CheckSignatureFrom(c.ca); err != nil {
		t.Error(err)
	}
	if _, err := checkIssued(pemData, key, "system:node:worker-1"); err != nil {
		t.Errorf("key and certificate do not match: %v", err)
	}

	// The layout is the kubelet's own certificate store's, so a kubelet started later loads the
	// certificate and rotates it: a dated kubelet-client-<date>.pem (0600) and
	// kubelet-client-current.pem linking to it, the path kubelet.conf names.
	dir := p.KubeletPKIDir()
	store, err := certificate.NewFileStore("kubelet-client", dir, dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if store.CurrentPath() != p.KubeletClientCert() {
		t.Errorf("the kubelet's store reads %s, kubelet.conf names %s", store.CurrentPath(), p.KubeletClientCert())
	}
	cur, err := store.Current()
	if err != nil {
		t.Fatalf("the kubelet's store cannot load the certificate: %v", err)
	}
	if cur.Leaf.Subject.CommonName != "system:node:worker-1" {
		t.Errorf("the store's current certificate is for %q", cur.Leaf.Subject.CommonName)
	}
	target, err := os.Readlink(p.KubeletClientCert())
	if err != nil {
		t.Fatalf("%s is not a symlink: %v", p.KubeletClientCert(), err)
	}
	if filepath.Dir(target) != dir || !regexp.MustCompile(`^kubelet-client-\d{4}(-\d\d){5}\.pem$`).MatchString(filepath.Base(target)) {
		t.Errorf("kubelet-client-current.pem -> %s, want %s/kubelet-client-<yyyy-mm-dd-hh-mm-ss>.pem", target, dir)
	}
	if fi, err := os.Lstat(target); err != nil || fi.Mode() != 0o600 {
		t.Errorf("dated certificate file: %v %v, want a regular file with mode 0600", fi, err)
	}
	if target != j.certFile {
		t.Errorf("join reports %s as its certificate file, the link points at %s", j.certFile, target)
	}

	// The CSR is the kubelet's: its signer, its usages, and a key in the cluster's algorithm.
	if len(c.csrs) != 1 {
		t.Fatalf("%d CSRs submitted", len(c.csrs))
	}
	csr := c.csrs[0]
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName {
		t.Errorf("signer %s", csr.Spec.SignerName)
	}
	if u := csr.Spec.Usages; len(u) != 2 || u[0] != certificatesv1.UsageDigitalSignature || u[1] != certificatesv1.UsageClientAuth {
		t.Errorf("usages %v", u)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Errorf("key %T, want ECDSA P-384 (the cluster's encryptionAlgorithm)", cert.PublicKey)
	}

	want := []string{
		"etc", "etc/kubernetes", "etc/kubernetes/kubelet.conf", "etc/kubernetes/pki", "etc/kubernetes/pki/ca.crt",
		"etc/systemd", "etc/systemd/system", "etc/systemd/system/kubelet.service", "etc/systemd/system/kubelet.service.d",
		"etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
		"var", "var/lib", "var/lib/kubelet", "var/lib/kubelet/config.yaml", "var/lib/kubelet/kubeadm-flags.env",
		"var/lib/kubelet/pki", filepath.Base(j.certFile), "var/lib/kubelet/pki/kubelet-client-current.pem@",
	}
	want[len(want)-2] = "var/lib/kubelet/pki/" + want[len(want)-2]
	sort.Strings(want)
	if got := tree(t, root); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	flags, _ := os.ReadFile(p.KubeletFlagsEnv())
	if !strings.Contains(string(flags), "--hostname-override=worker-1") {
		t.Errorf("kubeadm-flags.env lacks the node name: %s", flags)
	}
	cfgYAML, _ := os.ReadFile(p.KubeletConfig())
	if !strings.Contains(string(cfgYAML), "clientCAFile: "+root+"/etc/kubernetes/pki/ca.crt") {
		t.Errorf("config.yaml does not point under the root dir:\n%s", cfgYAML)
	}
}

func TestJoinRollsBackOnFailedBootstrap(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	c := newTestCluster(t)
	c.deny = true
	j := newTestJoin(t, root, c, nil)
	err := runAll(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("err = %v, want the denied CSR", err)
	}
	if left := tree(t, root); len(left) > 0 {
		t.Errorf("a failed join left files under the root dir:\n%s", strings.Join(left, "\n"))
	}
}

func TestJoinRollbackKeepsWhatWasThere(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := paths.MustUnder(root)
	// An operator's file next to ours, and a kubeadm-flags.env from an earlier installation.
	other := filepath.Join(p.KubernetesDir(), "manifests", "keep.yaml")
	os.MkdirAll(filepath.Dir(other), 0o755)
	os.WriteFile(other, []byte("mine"), 0o600)
	os.MkdirAll(p.KubeletDir(), 0o700)
	os.WriteFile(p.KubeletFlagsEnv(), []byte("KUBELET_KUBEADM_ARGS=\"--old\"\n"), 0o640)
	before := tree(t, root)

	c := newTestCluster(t)
	c.deny = true
	j := newTestJoin(t, root, c, nil)
	if err := runAll(context.Background(), j); err == nil {
		t.Fatal("join succeeded with a denied CSR")
	}
	if after := tree(t, root); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("files after rollback %v, want %v", after, before)
	}
	if b, _ := os.ReadFile(p.KubeletFlagsEnv()); string(b) != "KUBELET_KUBEADM_ARGS=\"--old\"\n" || mode(t, p.KubeletFlagsEnv()) != 0o640 {
		t.Errorf("kubeadm-flags.env not restored: %q %o", b, mode(t, p.KubeletFlagsEnv()))
	}
	if b, _ := os.ReadFile(other); string(b) != "mine" {
		t.Errorf("someone else's file changed: %q", b)
	}
}

func TestJoinRollsBackWhenCancelled(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	c := newTestCluster(t)
	c.pending = true
	j := newTestJoin(t, root, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := runAll(ctx, j); err == nil {
		t.Fatal("join succeeded without a signed certificate")
	}
	if left := tree(t, root); len(left) > 0 {
		t.Errorf("an interrupted join left files:\n%s", strings.Join(left, "\n"))
	}
}

func TestJoinMissingKubeletConfigWritesNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	c := newTestCluster(t)
	c.client.CoreV1().ConfigMaps("kube-system").Delete(context.Background(), bootstrap.KubeletConfigConfigMap, metav1.DeleteOptions{})
	j := newTestJoin(t, root, c, nil)
	err := runAll(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "kube-system/kubelet-config") {
		t.Fatalf("err = %v", err)
	}
	if left := tree(t, root); len(left) > 0 {
		t.Errorf("files left:\n%s", strings.Join(left, "\n"))
	}
}

func TestJoinDiscoveryFailureWritesNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	c := newTestCluster(t)
	j := newTestJoin(t, root, c, func(o *Options) {
		o.Discover = func(context.Context) (*discovery.Result, error) {
			return nil, errors.New("the cluster CA's public key hash is sha256:x, not sha256:y")
		}
	})
	if err := runAll(context.Background(), j); err == nil {
		t.Fatal("no error")
	}
	if left := tree(t, root); len(left) > 0 {
		t.Errorf("files left:\n%s", strings.Join(left, "\n"))
	}
}

func TestJoinPreflightRefusesJoinedNode(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := paths.MustUnder(root)
	os.MkdirAll(p.KubernetesDir(), 0o755)
	os.WriteFile(p.Kubeconfig("kubelet.conf"), []byte("old"), 0o600)
	c := newTestCluster(t)
	j := newTestJoin(t, root, c, nil)
	err := j.Preflight(context.Background())
	if err == nil || !strings.Contains(err.Error(), "FileAvailable--etc-kubernetes-kubelet.conf") {
		t.Fatalf("err = %v", err)
	}

	// Ignored, the join proceeds and replaces the file.
	j = newTestJoin(t, root, c, func(o *Options) { o.IgnorePreflightErrors = []string{"FileAvailable--etc-kubernetes-kubelet.conf"} })
	if err := runAll(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p.Kubeconfig("kubelet.conf")); string(b) == "old" {
		t.Error("kubelet.conf was not replaced")
	}
}

func TestJoinRefusesReadyNodeOfSameName(t *testing.T) {
	t.Parallel()
	ready := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}, Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	root := t.TempDir()
	c := newTestCluster(t, ready)
	j := newTestJoin(t, root, c, nil)
	err := runAll(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), `a Node with name "worker-1" and status "Ready" already exists`) {
		t.Fatalf("err = %v", err)
	}
	if left := tree(t, root); len(left) > 0 {
		t.Errorf("files left:\n%s", strings.Join(left, "\n"))
	}

	// A NotReady node of that name (a node re-joining after reset) is taken over.
	notReady := ready.DeepCopy()
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	root = t.TempDir()
	j = newTestJoin(t, root, newTestCluster(t, notReady), nil)
	if err := runAll(context.Background(), j); err != nil {
		t.Fatal(err)
	}
}

func TestJoinDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	c := newTestCluster(t)
	var log strings.Builder
	j := newTestJoin(t, root, c, func(o *Options) { o.DryRun = true; o.Log = &log })
	if err := runAll(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if left := tree(t, root); len(left) > 0 {
		t.Errorf("a dry run wrote:\n%s", strings.Join(left, "\n"))
	}
	if len(c.csrs) > 0 {
		t.Error("a dry run submitted a CSR")
	}
	for _, want := range []string{"[dryrun] Would write file " + root + "/etc/kubernetes/bootstrap-kubelet.conf", "kind: KubeletConfiguration", "Would request a client certificate for system:node:worker-1"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, log.String())
		}
	}

	// Without a reachable cluster too.
	root = t.TempDir()
	j = newTestJoin(t, root, c, func(o *Options) {
		o.DryRun = true
		o.Discover = func(context.Context) (*discovery.Result, error) { return nil, errors.New("connection refused") }
	})
	if err := runAll(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if left := tree(t, root); len(left) > 0 {
		t.Errorf("a dry run wrote:\n%s", strings.Join(left, "\n"))
	}
}

// fakeKubelet is a systemd-managed kubelet that performs the TLS bootstrap by writing
// kubelet.conf (and a certificate) when restarted.
type fakeKubelet struct {
	p                  paths.Paths
	restarts, stops    int
	writeKubeletConf   bool
	kubeletConfContent []byte
}

func (k *fakeKubelet) Restart(context.Context) error {
	k.restarts++
	if k.writeKubeletConf {
		os.MkdirAll(k.p.KubeletPKIDir(), 0o755)
		os.WriteFile(filepath.Join(k.p.KubeletPKIDir(), "kubelet-client-2026.pem"), []byte("x"), 0o600)
		os.WriteFile(k.p.Kubeconfig("kubelet.conf"), k.kubeletConfContent, 0o600)
	}
	return nil
}

func (k *fakeKubelet) Stop(context.Context) error { k.stops++; return nil }

func TestJoinHandsBootstrapToSystemdKubelet(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := paths.MustUnder(root)
	c := newTestCluster(t)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: testServer, CertificateAuthorityData: c.caPEM}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "x"}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	data, _ := clientcmd.Write(*kc)
	k := &fakeKubelet{p: p, writeKubeletConf: true, kubeletConfContent: data}
	j := newTestJoin(t, root, c, func(o *Options) { o.Kubelet = k })
	if err := runAll(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if k.restarts != 1 || len(c.csrs) != 0 {
		t.Errorf("restarts %d, CSRs by kubestrap %d: want the kubelet to bootstrap", k.restarts, len(c.csrs))
	}
	if _, err := os.Stat(p.Kubeconfig("bootstrap-kubelet.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("bootstrap-kubelet.conf not removed after the kubelet's bootstrap")
	}

	// A kubelet that never writes kubelet.conf: the join times out, stops it, and removes
	// everything, including what the kubelet wrote.
	root = t.TempDir()
	p = paths.MustUnder(root)
	k = &fakeKubelet{p: p}
	j = newTestJoin(t, root, c, func(o *Options) {
		o.Kubelet = k
		o.Config.Join.Timeouts.TLSBootstrap = &metav1.Duration{Duration: 1500 * time.Millisecond}
	})
	err := runAll(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "did not write a working") {
		t.Fatalf("err = %v", err)
	}
	if k.stops != 1 {
		t.Errorf("kubelet stopped %d times after the failed join", k.stops)
	}
	if left := tree(t, root); len(left) > 0 {
		t.Errorf("files left:\n%s", strings.Join(left, "\n"))
	}
}

// A join that fails after the certificate was stored removes it and puts back the link an earlier
// kubelet left.
func TestJoinRollsBackStoredClientCert(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := paths.MustUnder(root)
	dir := p.KubeletPKIDir()
	old := filepath.Join(dir, "kubelet-client-2020-01-01-00-00-00.pem")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(old, []byte("old pair"), 0o600)
	os.Symlink(old, p.KubeletClientCert())
	// kubelet.conf is a directory, so writing it, the step after the certificate, fails.
	os.MkdirAll(p.Kubeconfig("kubelet.conf"), 0o755)
	before := tree(t, root)

	c := newTestCluster(t)
	var log strings.Builder
	j := newTestJoin(t, root, c, func(o *Options) {
		o.IgnorePreflightErrors = []string{"FileAvailable--etc-kubernetes-kubelet.conf"}
		o.Log = &log
	})
	err := runAll(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "kubelet.conf") {
		t.Fatalf("err = %v, want the failure to write kubelet.conf", err)
	}
	if !strings.Contains(log.String(), "Wrote the node's client certificate and key") {
		t.Fatalf("the join failed before it stored the certificate, so the test misses the rollback it is about:\n%s", log.String())
	}
	if after := tree(t, root); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("files after rollback:\n%s\nwant:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	if target, _ := os.Readlink(p.KubeletClientCert()); target != old {
		t.Errorf("kubelet-client-current.pem -> %q after rollback, want %s", target, old)
	}
}
