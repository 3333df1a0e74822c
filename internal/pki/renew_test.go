package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// writeKubeconfigs writes the five renewable kubeconfig files the way the kubeconfig package
// does (that package imports this one, so the tests build them by hand).
func writeKubeconfigs(t *testing.T, p paths.Paths, cfg *config.Config, now time.Time) {
	t.Helper()
	ca, caKey, err := LoadCA(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string][]string{
		"admin.conf":              {"kubernetes-admin", "kubeadm:cluster-admins"},
		"super-admin.conf":        {"kubernetes-super-admin", "system:masters"},
		"controller-manager.conf": {"system:kube-controller-manager"},
		"scheduler.conf":          {"system:kube-scheduler"},
		"csr-approver.conf":       {"kubestrap:csr-approver"},
	}
	for file, u := range users {
		key, err := GenerateKey(config.AlgorithmECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := NewSignedCert(CertConfig{CommonName: u[0], Organization: u[1:], Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			NotBefore: now.Add(-CertificateBackdate), NotAfter: now.Add(cfg.CertValidity())}, key, ca, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, _ := EncodeKeyPEM(key)
		c := clientcmdapi.NewConfig()
		c.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: cfg.LocalAPIServerURL(), CertificateAuthorityData: EncodeCertPEM(ca)}
		c.AuthInfos[u[0]] = &clientcmdapi.AuthInfo{ClientCertificateData: EncodeCertPEM(cert), ClientKeyData: keyPEM}
		c.Contexts[u[0]+"@kubernetes"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: u[0]}
		c.CurrentContext = u[0] + "@kubernetes"
		data, err := clientcmd.Write(*c)
		if err != nil {
			t.Fatal(err)
		}
		if err := fsutil.WriteFileAtomic(p.Kubeconfig(file), data, KeyFileMode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckExpiration(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p, _ := newPKI(t, cfg)
	writeKubeconfigs(t, p, cfg, t0)
	dir := certDir(p, cfg)
	// One missing certificate, one missing kubeconfig and an external front-proxy CA.
	os.Remove(filepath.Join(dir, "etcd/peer.crt"))
	os.Remove(p.Kubeconfig("scheduler.conf"))
	os.Remove(filepath.Join(dir, "front-proxy-ca.key"))

	now := t0.Add(30 * 24 * time.Hour)
	certs, cas, err := CheckExpirationAt(cfg, p, now)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range certs {
		names = append(names, c.Name)
	}
	want := []string{"admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client", "controller-manager.conf",
		"csr-approver.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server", "front-proxy-client", "scheduler.conf", "super-admin.conf"}
	if !slices.Equal(names, want) {
		t.Errorf("certificates %v, want %v", names, want)
	}
	if len(cas) != 3 || cas[0].Name != "ca" || cas[1].Name != "etcd-ca" || cas[2].Name != "front-proxy-ca" {
		t.Errorf("CAs %+v", cas)
	}
	for _, c := range certs {
		if c.Name == "apiserver" && (c.ResidualTime != 335*24*time.Hour || c.CAName != "ca" || c.ExternallyManaged) {
			t.Errorf("apiserver row %+v", c)
		}
		if c.Name == "front-proxy-client" && !c.ExternallyManaged {
			t.Error("front-proxy-client should be externally managed (no front-proxy-ca.key)")
		}
	}

	var table bytes.Buffer
	if err := WriteExpirationTable(&table, certs, cas); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "check-expiration.golden", table.Bytes())

	js, err := json.MarshalIndent(ExpirationInfo(certs, cas), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "check-expiration.json.golden", append(js, '\n'))
	ym, err := yaml.Marshal(ExpirationInfo(certs, cas))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "check-expiration.yaml.golden", ym)
}

func TestCheckExpirationEmpty(t *testing.T) {
	t.Parallel()
	certs, cas, err := CheckExpirationAt(testConfig(), paths.MustUnder(t.TempDir()), t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(certs, cas...) {
		if !c.Missing {
			t.Errorf("%s not reported missing", c.Name)
		}
	}
	var table bytes.Buffer
	if err := WriteExpirationTable(&table, certs, cas); err != nil {
		t.Fatal(err)
	}
	mustContain(t, table.String(), "!MISSING! apiserver", "!MISSING! admin.conf", "!MISSING! etcd-ca")
}

func TestRenew(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p, _ := newPKI(t, cfg)
	writeKubeconfigs(t, p, cfg, t0)
	dir := certDir(p, cfg)
	before := snapshot(t, p.Root())
	oldCerts := map[string]*x509.Certificate{}
	for _, n := range RenewNames(cfg) {
		oldCerts[n] = currentCert(t, p, cfg, n)
	}

	t1 := t0.Add(200 * 24 * time.Hour)
	var log bytes.Buffer
	if err := Renew(cfg, p, nil, Options{Log: &log, Now: fixedClock(t1)}); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, p.Root())
	// CAs, sa and kubelet-less files are untouched.
	for _, f := range []string{"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key", "sa.key", "sa.pub"} {
		rel := filepath.Join("etc/kubernetes/pki", f)
		if !bytes.Equal(before[rel].data, after[rel].data) || !before[rel].mtime.Equal(after[rel].mtime) {
			t.Errorf("%s changed: CAs and sa are never renewed", f)
		}
	}
	roots := map[string]*x509.CertPool{}
	for _, ca := range []string{"ca", "front-proxy-ca", "etcd/ca"} {
		c, err := ReadCert(filepath.Join(dir, ca+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		roots[caPhaseName(ca)] = x509.NewCertPool()
		roots[caPhaseName(ca)].AddCert(c)
	}
	for _, n := range RenewNames(cfg) {
		old, cur := oldCerts[n], currentCert(t, p, cfg, n)
		if cur.SerialNumber.Cmp(old.SerialNumber) == 0 {
			t.Errorf("%s: serial not changed", n)
		}
		if bytes.Equal(cur.RawSubjectPublicKeyInfo, old.RawSubjectPublicKeyInfo) {
			t.Errorf("%s: key not changed", n)
		}
		if k, ok := cur.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want the configured ECDSA-P256", n, cur.PublicKey)
		}
		if cur.Subject.CommonName != old.Subject.CommonName || !slices.Equal(cur.Subject.Organization, old.Subject.Organization) ||
			!slices.Equal(cur.DNSNames, old.DNSNames) || !slices.EqualFunc(cur.IPAddresses, old.IPAddresses, net.IP.Equal) ||
			!slices.Equal(cur.ExtKeyUsage, old.ExtKeyUsage) {
			t.Errorf("%s: identity changed: %v %v %v %v -> %v %v %v %v", n, old.Subject, old.DNSNames, old.IPAddresses, old.ExtKeyUsage,
				cur.Subject, cur.DNSNames, cur.IPAddresses, cur.ExtKeyUsage)
		}
		if !cur.NotBefore.Equal(t1.Add(-5*time.Minute)) || !cur.NotAfter.Equal(t1.Add(8760*time.Hour)) {
			t.Errorf("%s: validity %s - %s", n, cur.NotBefore, cur.NotAfter)
		}
		caName := CA
		if s, ok := specByName(static, n); ok {
			caName = s.CAName
		}
		if _, err := cur.Verify(x509.VerifyOptions{Roots: roots[caName], CurrentTime: t1, KeyUsages: cur.ExtKeyUsage}); err != nil {
			t.Errorf("%s does not verify against %s: %v", n, caName, err)
		}
	}
	mustContain(t, log.String(),
		"certificate for serving the Kubernetes API renewed\n",
		"certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself renewed\n",
		"Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates.",
	)
	// The renewed PKI is still what EnsureCerts expects.
	if err := EnsureCerts(cfg, p, nil, Options{Now: fixedClock(t1)}); err != nil {
		t.Errorf("EnsureCerts after renewal: %v", err)
	}
	if fi, err := os.Stat(p.Kubeconfig("admin.conf")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.conf after renewal: %v %v", fi.Mode(), err)
	}
}

func TestRenewSelectedAndEdgeCases(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p, _ := newPKI(t, cfg)
	dir := certDir(p, cfg)
	before := snapshot(t, p.Root())

	var log bytes.Buffer
	if err := Renew(cfg, p, []string{APIServer}, Options{Log: &log, Now: fixedClock(t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, p.Root())
	for name, b := range before {
		changed := !bytes.Equal(b.data, after[name].data)
		if wantChange := strings.HasPrefix(filepath.Base(name), "apiserver.") && !strings.Contains(name, "etcd"); changed != wantChange {
			t.Errorf("%s changed=%v", name, changed)
		}
	}
	if strings.Contains(log.String(), "Done renewing") {
		t.Error("the restart hint belongs to `renew all` only")
	}

	// kubeconfig files that do not exist are reported, not created.
	log.Reset()
	if err := Renew(cfg, p, []string{"admin.conf"}, Options{Log: &log, Now: fixedClock(t0)}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, log.String(), "MISSING! certificate embedded in the kubeconfig file for the admin")
	if _, err := os.Stat(p.Kubeconfig("admin.conf")); err == nil {
		t.Error("admin.conf created by renew")
	}

	for _, bad := range []string{CA, EtcdCA, "kubelet.conf", "nope"} {
		if err := Renew(cfg, p, []string{bad}, Options{Now: fixedClock(t0)}); err == nil {
			t.Errorf("renew %s: no error", bad)
		}
	}

	// External CA: leaves of that CA are skipped with kubeadm's message.
	os.Remove(filepath.Join(dir, "etcd/ca.key"))
	log.Reset()
	snap := snapshot(t, dir)
	if err := Renew(cfg, p, []string{EtcdServer}, Options{Log: &log, Now: fixedClock(t0)}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, log.String(), "Detected external etcd/ca, certificate for serving etcd can't be renewed")
	assertUnchanged(t, snap, snapshot(t, dir))

	// Dry run writes nothing.
	log.Reset()
	if err := Renew(cfg, p, []string{FrontProxyClient}, Options{Files: fsutil.NewDryRun(&log), Log: &log, Now: fixedClock(t0)}); err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, snap, snapshot(t, dir))
	mustContain(t, log.String(), "[dryrun] Would write file "+filepath.Join(dir, "front-proxy-client.crt"))
}

func TestRenewNames(t *testing.T) {
	t.Parallel()
	want := []string{"admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client", "controller-manager.conf",
		"csr-approver.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server", "front-proxy-client", "scheduler.conf", "super-admin.conf"}
	if got := RenewNames(nil); !slices.Equal(got, want) {
		t.Errorf("RenewNames = %v", got)
	}
	ext := testConfig()
	ext.Cluster.Etcd = config.Etcd{External: &config.ExternalEtcd{Endpoints: []string{"https://10.0.0.1:2379"}}}
	for _, n := range RenewNames(ext) {
		if strings.Contains(n, "etcd") {
			t.Errorf("external etcd: %s listed", n)
		}
	}
	for _, n := range want {
		if RenewLongName(n) == "" {
			t.Errorf("%s has no long name", n)
		}
	}
}

func currentCert(t *testing.T, p paths.Paths, cfg *config.Config, name string) *x509.Certificate {
	t.Helper()
	if s, ok := specByName(static, name); ok {
		c, err := ReadCert(filepath.Join(certDir(p, cfg), s.CertFile()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ec, err := readEmbeddedClient(p.Kubeconfig(name))
	if err != nil {
		t.Fatal(err)
	}
	return ec.cert
}
