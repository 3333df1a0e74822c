package kubeconfig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
)

var t0 = time.Date(2030, time.March, 1, 12, 0, 0, 0, time.UTC)

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

// testConfig is the shared defaulted configuration (configtest) for this package's node.
func testConfig() *config.Config { return configtest.Init("192.168.0.10", "node1") }

// withCA returns a fresh root holding the cluster CA.
func withCA(t *testing.T, cfg *config.Config) paths.Paths {
	t.Helper()
	p := paths.MustUnder(t.TempDir())
	if err := pki.EnsureCerts(cfg, p, []string{pki.CA}, pki.Options{Now: at(t0)}); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, path string) *clientcmdapi.Config {
	t.Helper()
	c, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIdentities(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Cluster.ControlPlaneEndpoint = "lb.example.com"
	want := []Identity{
		{Name: "admin", File: "admin.conf", User: "kubernetes-admin", Orgs: []string{"kubeadm:cluster-admins"}, Server: "https://lb.example.com:6443"},
		{Name: "super-admin", File: "super-admin.conf", User: "kubernetes-super-admin", Orgs: []string{"system:masters"}, Server: "https://lb.example.com:6443"},
		{Name: "kubelet", File: "kubelet.conf", User: "system:node:node1", Orgs: []string{"system:nodes"}, Server: "https://192.168.0.10:6443"},
		{Name: "controller-manager", File: "controller-manager.conf", User: "system:kube-controller-manager", Server: "https://192.168.0.10:6443"},
		{Name: "scheduler", File: "scheduler.conf", User: "system:kube-scheduler", Server: "https://192.168.0.10:6443"},
		{Name: "csr-approver", File: "csr-approver.conf", User: "kubestrap:csr-approver", Server: "https://192.168.0.10:6443"},
	}
	got := Identities(cfg)
	if len(got) != len(want) {
		t.Fatalf("got %d identities", len(got))
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].File != want[i].File || got[i].User != want[i].User ||
			!slices.Equal(got[i].Orgs, want[i].Orgs) || got[i].Server != want[i].Server {
			t.Errorf("identity %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !slices.Equal(KubeconfigNames(), []string{"admin", "super-admin", "kubelet", "controller-manager", "scheduler", "csr-approver"}) {
		t.Errorf("KubeconfigNames = %v", KubeconfigNames())
	}
}

func TestEnsureKubeconfigs(t *testing.T) {
	t.Parallel()
	for _, serial := range []bool{false, true} {
		t.Run(map[bool]string{false: "parallel", true: "serial"}[serial], func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Cluster.ControlPlaneEndpoint = "lb.example.com:6443"
			p := withCA(t, cfg)
			ca, _, err := pki.LoadCA(p, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			if err := EnsureKubeconfigs(cfg, p, nil, pki.Options{Log: &log, Now: at(t0), Serial: serial}); err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			for _, id := range Identities(cfg) {
				path := p.Kubeconfig(id.File)
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %o, want 600", id.File, fi.Mode().Perm())
				}
				c := load(t, path)
				ctxName := id.User + "@kubernetes"
				if c.CurrentContext != ctxName {
					t.Errorf("%s: current context %q, want %q", id.File, c.CurrentContext, ctxName)
				}
				ctx := c.Contexts[ctxName]
				if ctx == nil || ctx.Cluster != "kubernetes" || ctx.AuthInfo != id.User {
					t.Fatalf("%s: context %+v", id.File, ctx)
				}
				cl := c.Clusters["kubernetes"]
				if cl.Server != id.Server {
					t.Errorf("%s: server %s, want %s", id.File, cl.Server, id.Server)
				}
				if !bytes.Equal(cl.CertificateAuthorityData, pki.EncodeCertPEM(ca)) {
					t.Errorf("%s: CA data is not ca.crt", id.File)
				}
				ai := c.AuthInfos[id.User]
				cert, err := pki.ParseCertPEM(ai.ClientCertificateData)
				if err != nil {
					t.Fatal(err)
				}
				key, err := pki.ParseKeyPEM(ai.ClientKeyData)
				if err != nil {
					t.Fatal(err)
				}
				if k, ok := key.Public().(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() || !k.Equal(cert.PublicKey) {
					t.Errorf("%s: client key %T is not the certificate's ECDSA-P256 key", id.File, key.Public())
				}
				if cert.Subject.CommonName != id.User || !slices.Equal(cert.Subject.Organization, id.Orgs) {
					t.Errorf("%s: subject %v, want CN=%s O=%v", id.File, cert.Subject, id.User, id.Orgs)
				}
				if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
					t.Errorf("%s: client certificate does not verify: %v", id.File, err)
				}
				if !cert.NotAfter.Equal(t0.Add(8760 * time.Hour)) {
					t.Errorf("%s: NotAfter %s, want now+certificateValidityPeriod", id.File, cert.NotAfter)
				}
				if !strings.Contains(log.String(), `[kubeconfig] Writing "`+id.File+`" kubeconfig file`) {
					t.Errorf("no writing line for %s:\n%s", id.File, log.String())
				}
			}

			// Second run: nothing changes.
			before := snapshot(t, p.KubernetesDir())
			log.Reset()
			if err := EnsureKubeconfigs(cfg, p, nil, pki.Options{Log: &log, Now: at(t0.Add(time.Hour)), Serial: serial}); err != nil {
				t.Fatal(err)
			}
			after := snapshot(t, p.KubernetesDir())
			for name, b := range before {
				if !bytes.Equal(b.data, after[name].data) || !b.mtime.Equal(after[name].mtime) {
					t.Errorf("%s rewritten by the second run", name)
				}
			}
			if n := strings.Count(log.String(), "[kubeconfig] Using existing kubeconfig file: "); n != 6 {
				t.Errorf("%d 'Using existing' lines, want 6:\n%s", n, log.String())
			}
		})
	}
}

type fileState struct {
	data  []byte
	mtime time.Time
}

func snapshot(t *testing.T, root string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, _ := d.Info()
		data, _ := os.ReadFile(path)
		out[path] = fileState{data, fi.ModTime()}
		return nil
	})
	return out
}

func TestEnsureKubeconfigsConflicts(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p := withCA(t, cfg)
	if err := EnsureKubeconfigs(cfg, p, nil, pki.Options{Now: at(t0)}); err != nil {
		t.Fatal(err)
	}

	t.Run("server URL change is only a warning", func(t *testing.T) {
		c := testConfig()
		c.Init.LocalAPIEndpoint.BindPort = 7443
		var log bytes.Buffer
		if err := EnsureKubeconfigs(c, p, []string{Scheduler}, pki.Options{Log: &log, Now: at(t0)}); err != nil {
			t.Fatal(err)
		}
		mustContain(t, log.String(), "[kubeconfig] WARNING:", "scheduler.conf", "unexpected API Server URL: expected: https://192.168.0.10:7443, got: https://192.168.0.10:6443")
	})
	t.Run("other node name", func(t *testing.T) {
		c := testConfig()
		c.Init.NodeRegistration.Name = "node2"
		err := EnsureKubeconfigs(c, p, []string{Kubelet}, pki.Options{Now: at(t0)})
		if err == nil {
			t.Fatal("no error")
		}
		mustContain(t, err.Error(), "kubelet.conf", `client certificate is for user "system:node:node1", the configuration needs "system:node:node2"`)
	})
	t.Run("CA mismatch", func(t *testing.T) {
		// A new CA (the old one removed) no longer matches the existing files.
		p2 := withCA(t, cfg)
		for _, f := range []string{"admin.conf", "scheduler.conf"} {
			data, _ := os.ReadFile(p.Kubeconfig(f))
			if err := os.WriteFile(p2.Kubeconfig(f), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		before := snapshot(t, p2.Root())
		err := EnsureKubeconfigs(cfg, p2, nil, pki.Options{Now: at(t0)})
		if err == nil {
			t.Fatal("no error")
		}
		mustContain(t, err.Error(), p2.Kubeconfig("admin.conf")+" exists but trusts a different CA", p2.Kubeconfig("scheduler.conf"))
		if after := snapshot(t, p2.Root()); len(after) != len(before) {
			t.Errorf("files written despite the error: %d -> %d", len(before), len(after))
		}
	})
}

func TestEnsureKubeconfigsWithoutCA(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p := paths.MustUnder(t.TempDir())
	err := EnsureKubeconfigs(cfg, p, nil, pki.Options{})
	if err == nil || !strings.Contains(err.Error(), "ca.crt not found") || !strings.Contains(err.Error(), "init phase certs ca") {
		t.Errorf("without a CA: %v", err)
	}

	// Dry run of a fresh init: reports the files, writes nothing.
	var log bytes.Buffer
	if err := EnsureKubeconfigs(cfg, p, nil, pki.Options{Files: fsutil.NewDryRun(&log), Log: &log}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(p.Root()); len(entries) != 0 {
		t.Errorf("dry run wrote %v", entries)
	}
	for _, id := range Identities(cfg) {
		mustContain(t, log.String(), "[dryrun] Would write file "+p.Kubeconfig(id.File))
	}

	// Dry run with a CA: still writes nothing.
	p2 := withCA(t, cfg)
	before := snapshot(t, p2.Root())
	if err := EnsureKubeconfigs(cfg, p2, nil, pki.Options{Files: fsutil.NewDryRun(nil)}); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, p2.Root()); len(after) != len(before) {
		t.Error("dry run with a CA wrote files")
	}
}

func TestEnsureKubeconfigsExternalCA(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p := withCA(t, cfg)
	if err := EnsureKubeconfigs(cfg, p, []string{Admin}, pki.Options{Now: at(t0)}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(p.CertDir(cfg.Cluster.CertificatesDir), "ca.key"))
	var log bytes.Buffer
	if err := EnsureKubeconfigs(cfg, p, []string{Admin}, pki.Options{Log: &log, Now: at(t0)}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, log.String(), "[kubeconfig] External CA mode: Using user provided admin.conf")
	err := EnsureKubeconfigs(cfg, p, []string{Scheduler}, pki.Options{Now: at(t0)})
	if err == nil || !strings.Contains(err.Error(), "external CA mode") {
		t.Errorf("missing scheduler.conf under an external CA: %v", err)
	}
	if err := EnsureKubeconfigs(cfg, p, []string{"bogus"}, pki.Options{}); err == nil {
		t.Error("unknown name accepted")
	}
}

func TestClientConfig(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p := withCA(t, cfg)
	ca, caKey, err := pki.LoadCA(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ClientConfig(ca, caKey, "https://lb:6443", "prod", "jane", []string{"devs", "ops"}, 2*time.Hour, config.AlgorithmECDSAP384)
	if err != nil {
		t.Fatal(err)
	}
	if c.CurrentContext != "jane@prod" || c.Clusters["prod"].Server != "https://lb:6443" {
		t.Errorf("config %+v", c)
	}
	cert, err := pki.ParseCertPEM(c.AuthInfos["jane"].ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	// Groups are a DER SET: their order on the wire is the encoding's, not the caller's.
	if orgs := slices.Sorted(slices.Values(cert.Subject.Organization)); cert.Subject.CommonName != "jane" || !slices.Equal(orgs, []string{"devs", "ops"}) {
		t.Errorf("subject %v", cert.Subject)
	}
	if d := time.Until(cert.NotAfter); d > 2*time.Hour || d < 2*time.Hour-time.Minute {
		t.Errorf("NotAfter %s is not ~2h from now", cert.NotAfter)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Errorf("key %T, want ECDSA P-384", cert.PublicKey)
	}
	if _, err := ClientConfig(ca, caKey, "https://lb:6443", "prod", "", nil, time.Hour, config.AlgorithmECDSAP256); err == nil {
		t.Error("empty user accepted")
	}
	if _, err := ClientConfig(ca, caKey, "https://lb:6443", "prod", "x", nil, 0, config.AlgorithmECDSAP256); err == nil {
		t.Error("zero validity accepted")
	}
}

// TestTokenConfigGolden pins the bootstrap-style kubeconfig join writes.
func TestTokenConfigGolden(t *testing.T) {
	t.Parallel()
	caPEM := []byte("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n")
	c := TokenConfig("https://192.168.0.10:6443", caPEM, "kubernetes", "tls-bootstrap-token-user", "abcdef.0123456789abcdef")
	data, err := clientcmd.Write(*c)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("..", "..", "testdata", "kubeconfig", "token.golden"), data)
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("missing %q in:\n%s", sub, s)
		}
	}
}
