package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

func TestEnsureCertsCreatesKubeadmSet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		alg     string
		check   func(t *testing.T, file string, pub any)
		notInCI bool // slow key sizes, skipped with -short
	}{
		{alg: config.AlgorithmECDSAP256, check: wantCurve(elliptic.P256())},
		{alg: config.AlgorithmECDSAP384, check: wantCurve(elliptic.P384())},
		{alg: config.AlgorithmRSA2048, check: wantRSA(2048)},
		{alg: config.AlgorithmRSA3072, check: wantRSA(3072), notInCI: true},
		{alg: config.AlgorithmRSA4096, check: wantRSA(4096), notInCI: true},
	}
	for _, tc := range cases {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			if tc.notInCI && testing.Short() {
				t.Skip("slow RSA key size")
			}
			cfg := testConfig()
			cfg.Cluster.EncryptionAlgorithm = tc.alg
			p, _ := newPKI(t, cfg)
			dir := certDir(p, cfg)

			got := snapshot(t, p.Root())
			if len(got) != len(allFiles) {
				var names []string
				for n := range got {
					names = append(names, n)
				}
				slices.Sort(names)
				t.Fatalf("got %d files, want %d: %v", len(got), len(allFiles), names)
			}
			for _, f := range allFiles {
				st, ok := got[filepath.Join("etc/kubernetes/pki", f)]
				if !ok {
					t.Errorf("%s missing", f)
					continue
				}
				want := os.FileMode(0o644)
				if strings.HasSuffix(f, ".key") {
					want = 0o600
				}
				if st.mode.Perm() != want {
					t.Errorf("%s mode %o, want %o", f, st.mode.Perm(), want)
				}
			}
			for _, d := range []string{dir, filepath.Join(dir, "etcd")} {
				fi, err := os.Stat(d)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o755 {
					t.Errorf("%s mode %o, want 755", d, fi.Mode().Perm())
				}
			}

			specs, err := CertSpecs(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			loaded := map[string]*x509.Certificate{}
			for _, s := range specs {
				cert, err := ReadCert(filepath.Join(dir, s.CertFile()))
				if err != nil {
					t.Fatal(err)
				}
				key, err := ReadKey(filepath.Join(dir, s.KeyFile()))
				if err != nil {
					t.Fatal(err)
				}
				if !publicKeysEqual(cert.PublicKey, key.Public()) {
					t.Errorf("%s: key does not match certificate", s.Name)
				}
				tc.check(t, s.KeyFile(), key.Public())
				loaded[s.Name] = cert
				checkCommon(t, s, cert)
			}
			// openssl verify -CAfile <ca> <leaf>, for every leaf and with its own usages.
			for _, s := range specs {
				if s.IsCA() {
					continue
				}
				roots := x509.NewCertPool()
				roots.AddCert(loaded[s.CAName])
				if _, err := loaded[s.Name].Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: s.Usages}); err != nil {
					t.Errorf("%s does not verify against %s: %v", s.Name, s.CAName, err)
				}
				// ... and not against another CA.
				other := CA
				if s.CAName == CA {
					other = FrontProxyCA
				}
				wrong := x509.NewCertPool()
				wrong.AddCert(loaded[other])
				if _, err := loaded[s.Name].Verify(x509.VerifyOptions{Roots: wrong, CurrentTime: t0, KeyUsages: s.Usages}); err == nil {
					t.Errorf("%s unexpectedly verifies against %s", s.Name, other)
				}
			}

			sa, err := ReadKey(filepath.Join(dir, "sa.key"))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, "sa.key", sa.Public())
			pubPEM, err := os.ReadFile(filepath.Join(dir, "sa.pub"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----\n")) {
				t.Errorf("sa.pub is not a PKIX PUBLIC KEY:\n%s", pubPEM)
			}
			pub, err := ParsePublicKeyPEM(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !publicKeysEqual(pub, sa.Public()) {
				t.Error("sa.pub does not match sa.key")
			}
		})
	}
}

func wantCurve(c elliptic.Curve) func(t *testing.T, file string, pub any) {
	return func(t *testing.T, file string, pub any) {
		t.Helper()
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != c {
			t.Errorf("%s: key %T, want ECDSA %s", file, pub, c.Params().Name)
		}
	}
}

func wantRSA(bits int) func(t *testing.T, file string, pub any) {
	return func(t *testing.T, file string, pub any) {
		t.Helper()
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k.N.BitLen() != bits {
			t.Errorf("%s: key %T, want RSA-%d", file, pub, bits)
		}
	}
}

// checkCommon checks what every certificate of the set has in common with kubeadm's.
func checkCommon(t *testing.T, s CertSpec, cert *x509.Certificate) {
	t.Helper()
	if cert.Subject.CommonName != s.CommonName {
		t.Errorf("%s: CN %q, want %q", s.Name, cert.Subject.CommonName, s.CommonName)
	}
	if len(cert.Subject.Organization) != 0 {
		t.Errorf("%s: O %v, want none (no system:masters anywhere in the PKI)", s.Name, cert.Subject.Organization)
	}
	if !cert.BasicConstraintsValid {
		t.Errorf("%s: basic constraints not marked valid", s.Name)
	}
	if !cert.NotBefore.Equal(t0.Add(-5 * time.Minute)) {
		t.Errorf("%s: NotBefore %s, want now-5m", s.Name, cert.NotBefore)
	}
	max := new(big.Int).SetInt64(math.MaxInt64 - 1)
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.Cmp(max) >= 0 {
		t.Errorf("%s: serial %s outside [1, 2^63-1)", s.Name, cert.SerialNumber)
	}
	if s.IsCA() {
		if !cert.IsCA {
			t.Errorf("%s: not a CA", s.Name)
		}
		if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign; cert.KeyUsage != want {
			t.Errorf("%s: key usage %b, want %b", s.Name, cert.KeyUsage, want)
		}
		if !slices.Equal(cert.DNSNames, []string{s.CommonName}) {
			t.Errorf("%s: DNS names %v, want [%s]", s.Name, cert.DNSNames, s.CommonName)
		}
		if !cert.NotAfter.Equal(t0.Add(87600 * time.Hour)) {
			t.Errorf("%s: NotAfter %s, want now+10y", s.Name, cert.NotAfter)
		}
		if err := cert.CheckSignatureFrom(cert); err != nil {
			t.Errorf("%s: not self-signed: %v", s.Name, err)
		}
		return
	}
	if cert.IsCA {
		t.Errorf("%s: leaf marked as CA", s.Name)
	}
	if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; cert.KeyUsage != want {
		t.Errorf("%s: key usage %b, want %b", s.Name, cert.KeyUsage, want)
	}
	if !slices.Equal(cert.ExtKeyUsage, s.Usages) {
		t.Errorf("%s: ext key usage %v, want %v", s.Name, cert.ExtKeyUsage, s.Usages)
	}
	if !cert.NotAfter.Equal(t0.Add(8760 * time.Hour)) {
		t.Errorf("%s: NotAfter %s, want now+1y", s.Name, cert.NotAfter)
	}
	if !slices.Equal(cert.DNSNames, s.AltNames.DNSNames) || !slices.EqualFunc(cert.IPAddresses, s.AltNames.IPs, net.IP.Equal) {
		t.Errorf("%s: SANs %v %v, want %v %v", s.Name, cert.DNSNames, cert.IPAddresses, s.AltNames.DNSNames, s.AltNames.IPs)
	}
}

func TestAltNames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		mutate   func(*config.Config)
		cert     string
		wantDNS  []string
		wantIPs  []string
		wantWarn string
	}{
		{
			name:    "apiserver defaults",
			cert:    APIServer,
			wantDNS: []string{"node1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			wantIPs: []string{"10.96.0.1", "192.168.0.10"},
		},
		{
			name: "apiserver endpoint name, extra SANs deduplicated and lower-cased, invalid dropped",
			mutate: func(c *config.Config) {
				c.Cluster.ControlPlaneEndpoint = "LB.Example.com:6443"
				c.Cluster.Networking.DNSDomain = "corp.internal"
				c.Cluster.APIServer.CertSANs = []string{"Kubernetes", "lb.example.com", "10.96.0.1", "*.apps.example.com", "203.0.113.7", "not_valid!", "NODE1"}
			},
			cert:     APIServer,
			wantDNS:  []string{"node1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.corp.internal", "lb.example.com", "*.apps.example.com"},
			wantIPs:  []string{"10.96.0.1", "192.168.0.10", "203.0.113.7"},
			wantWarn: `ignoring apiServer.certSANs entry "not_valid!"`,
		},
		{
			name: "apiserver endpoint IP and another service subnet",
			mutate: func(c *config.Config) {
				c.Cluster.ControlPlaneEndpoint = "192.168.0.100"
				c.Cluster.Networking.ServiceSubnet = "172.20.0.0/16"
			},
			cert:    APIServer,
			wantDNS: []string{"node1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			wantIPs: []string{"172.20.0.1", "192.168.0.10", "192.168.0.100"},
		},
		{
			name: "apiserver IPv6",
			mutate: func(c *config.Config) {
				c.Init.LocalAPIEndpoint.AdvertiseAddress = "fd00::10"
				c.Cluster.Networking.ServiceSubnet = "fd00:96::/112"
				c.Cluster.ControlPlaneEndpoint = "[fd00::100]:6443"
			},
			cert:    APIServer,
			wantDNS: []string{"node1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			wantIPs: []string{"fd00:96::1", "fd00::10", "fd00::100"},
		},
		{
			name:    "etcd server",
			mutate:  func(c *config.Config) { c.Cluster.Etcd.Local.ServerCertSANs = []string{"etcd.example.com", "10.0.0.9"} },
			cert:    EtcdServer,
			wantDNS: []string{"node1", "localhost", "etcd.example.com"},
			wantIPs: []string{"192.168.0.10", "127.0.0.1", "::1", "10.0.0.9"},
		},
		{
			name: "etcd peer ignores serverCertSANs",
			mutate: func(c *config.Config) {
				c.Cluster.Etcd.Local.ServerCertSANs = []string{"x.example.com"}
				c.Cluster.Etcd.Local.PeerCertSANs = []string{"peer.example.com"}
			},
			cert:    EtcdPeer,
			wantDNS: []string{"node1", "localhost", "peer.example.com"},
			wantIPs: []string{"192.168.0.10", "127.0.0.1", "::1"},
		},
		{
			name:    "CA carries its CN",
			cert:    EtcdCA,
			wantDNS: []string{"etcd-ca"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			var warns []string
			specs, err := CertSpecs(cfg, func(w string) { warns = append(warns, w) })
			if err != nil {
				t.Fatal(err)
			}
			s, ok := specByName(specs, tc.cert)
			if !ok {
				t.Fatalf("no spec %s", tc.cert)
			}
			if !slices.Equal(s.AltNames.DNSNames, tc.wantDNS) {
				t.Errorf("DNS %q, want %q", s.AltNames.DNSNames, tc.wantDNS)
			}
			if got := ipStrings(s.AltNames.IPs); !slices.Equal(got, tc.wantIPs) && !(len(got) == 0 && len(tc.wantIPs) == 0) {
				t.Errorf("IPs %q, want %q", got, tc.wantIPs)
			}
			if tc.wantWarn != "" {
				mustContain(t, strings.Join(warns, "\n"), tc.wantWarn)
			} else if len(warns) > 0 {
				t.Errorf("unexpected warnings %q", warns)
			}
		})
	}
}

func TestEnsureCertsLogsAndSANsOnDisk(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Cluster.APIServer.CertSANs = []string{"api.example.com"}
	p, log := newPKI(t, cfg)
	mustContain(t, log.String(),
		`[certs] Generating "ca" certificate and key`,
		`[certs] Generating "apiserver" certificate and key`,
		`[certs] apiserver serving cert is signed for DNS names [node1 kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local api.example.com] and IPs [10.96.0.1 192.168.0.10]`,
		`[certs] Generating "etcd/server" certificate and key`,
		`[certs] etcd/server serving cert is signed for DNS names [node1 localhost] and IPs [192.168.0.10 127.0.0.1 ::1]`,
		`[certs] Generating "sa" key and public key`,
		`[certs] Valid certificates and keys now exist in`,
	)
	cert, err := ReadCert(filepath.Join(certDir(p, cfg), "apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"node1", "kubernetes.default.svc.cluster.local", "api.example.com", "10.96.0.1", "192.168.0.10"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("apiserver.crt does not serve %s: %v", h, err)
		}
	}
	// The order of the log is kubeadm's, whatever order the goroutines finished in.
	var order []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.HasPrefix(l, `[certs] Generating "`) {
			order = append(order, strings.Split(l, `"`)[1])
		}
	}
	want := []string{"ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client", "etcd/ca", "etcd/server", "etcd/peer", "etcd/healthcheck-client", "apiserver-etcd-client", "sa"}
	if !slices.Equal(order, want) {
		t.Errorf("generation log order %v, want %v", order, want)
	}
}

func TestEnsureCertsIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, serial := range []bool{false, true} {
		t.Run(fmt.Sprintf("serial=%v", serial), func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			p := paths.MustUnder(t.TempDir())
			o := Options{Now: fixedClock(t0), Serial: serial}
			if err := EnsureCerts(cfg, p, nil, o); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, p.Root())
			var log bytes.Buffer
			o.Log = &log
			o.Now = fixedClock(t0.Add(24 * time.Hour))
			if err := EnsureCerts(cfg, p, nil, o); err != nil {
				t.Fatalf("second run: %v", err)
			}
			assertUnchanged(t, before, snapshot(t, p.Root()))
			if strings.Contains(log.String(), "Generating") {
				t.Errorf("second run generated something:\n%s", log.String())
			}
			mustContain(t, log.String(),
				"[certs] Using existing ca certificate and key",
				"[certs] Using existing apiserver certificate and key",
				"[certs] Using existing etcd/peer certificate and key",
				"[certs] Using existing sa key",
			)
		})
	}
}

func TestEnsureCertsConflicts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		names   []string
		later   time.Duration // how long after the PKI's creation the run happens
		break_  func(t *testing.T, cfg *config.Config, dir string)
		wantErr []string
	}{
		{
			name: "advertise address changed",
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				cfg.Init.LocalAPIEndpoint.AdvertiseAddress = "10.0.0.5"
			},
			wantErr: []string{
				"apiserver.crt: SANs differ from the configuration: missing IP 10.0.0.5",
				"etcd/server.crt: SANs differ from the configuration: missing IP 10.0.0.5",
				"etcd/peer.crt: SANs differ from the configuration: missing IP 10.0.0.5",
			},
		},
		{
			name: "new certSAN and node name",
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				cfg.Cluster.APIServer.CertSANs = []string{"new.example.com"}
				cfg.Init.NodeRegistration.Name = "node2"
			},
			wantErr: []string{
				"apiserver.crt: SANs differ from the configuration: missing DNS node2, missing DNS new.example.com",
				`etcd/server.crt: common name "node1" differs from the configuration's "node2"`,
			},
		},
		{
			name: "leaf from another PKI does not chain",
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				other, _ := newPKI(t, cfg)
				for _, f := range []string{"apiserver.crt", "apiserver.key"} {
					copyFile(t, filepath.Join(certDir(other, cfg), f), filepath.Join(dir, f))
				}
			},
			wantErr: []string{"apiserver.crt is not signed by the CA"},
		},
		{
			name: "key does not match certificate",
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				copyFile(t, filepath.Join(dir, "front-proxy-client.key"), filepath.Join(dir, "apiserver-kubelet-client.key"))
			},
			wantErr: []string{"apiserver-kubelet-client.key does not match", "apiserver-kubelet-client.crt"},
		},
		{
			name: "CA deleted, leaves left behind",
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				os.Remove(filepath.Join(dir, "etcd/ca.crt"))
				os.Remove(filepath.Join(dir, "etcd/ca.key"))
			},
			wantErr: []string{"etcd/server.crt exists but its CA", "cannot chain"},
		},
		{
			name: "CA key without certificate",
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				os.Remove(filepath.Join(dir, "front-proxy-ca.crt"))
			},
			wantErr: []string{"front-proxy-ca.key exists but", "front-proxy-ca.crt does not"},
		},
		{
			name: "leaf key missing",
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				os.Remove(filepath.Join(dir, "apiserver-etcd-client.key"))
			},
			wantErr: []string{"apiserver-etcd-client.crt exists but", "apiserver-etcd-client.key does not"},
		},
		{
			name:    "leaf expired",
			later:   8761 * time.Hour,
			break_:  func(t *testing.T, cfg *config.Config, dir string) {},
			wantErr: []string{"apiserver.crt expired on 2031-03-01T12:00:00Z", "kubestrap certs renew"},
		},
		{
			name: "sa.pub from another key",
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				other, _ := newPKI(t, cfg)
				copyFile(t, filepath.Join(certDir(other, cfg), "sa.pub"), filepath.Join(dir, "sa.pub"))
			},
			wantErr: []string{"sa.pub does not match", "sa.key"},
		},
		{
			name:  "single leaf requested without its CA on disk",
			names: []string{APIServer},
			break_: func(t *testing.T, cfg *config.Config, dir string) {
				os.RemoveAll(dir)
			},
			wantErr: []string{"ca.crt not found: create the ca CA first (kubestrap init phase certs ca)"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			p, _ := newPKI(t, cfg)
			dir := certDir(p, cfg)
			tc.break_(t, cfg, dir)
			before := snapshot(t, p.Root())
			err := EnsureCerts(cfg, p, tc.names, Options{Now: fixedClock(t0.Add(time.Hour + tc.later))})
			if err == nil {
				t.Fatal("no error")
			}
			mustContain(t, err.Error(), tc.wantErr...)
			// Validation comes before any write: nothing changed.
			assertUnchanged(t, before, snapshot(t, p.Root()))
		})
	}
}

// Extra SANs in an existing certificate are fine: it still serves every configured name.
func TestEnsureCertsAcceptsExtraSANs(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Cluster.APIServer.CertSANs = []string{"old.example.com"}
	p, _ := newPKI(t, cfg)
	cfg.Cluster.APIServer.CertSANs = nil
	if err := EnsureCerts(cfg, p, nil, Options{Now: fixedClock(t0)}); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureCertsExternalCA(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p, _ := newPKI(t, cfg)
	dir := certDir(p, cfg)
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := EnsureCerts(cfg, p, nil, Options{Log: &log, Now: fixedClock(t0)}); err != nil {
		t.Fatalf("external CA with every leaf present: %v", err)
	}
	mustContain(t, log.String(), "[certs] Using existing ca certificate (external CA: ca.key is not present)")

	os.Remove(filepath.Join(dir, "apiserver.crt"))
	os.Remove(filepath.Join(dir, "apiserver.key"))
	err := EnsureCerts(cfg, p, nil, Options{Now: fixedClock(t0)})
	if err == nil {
		t.Fatal("missing leaf under an external CA must be an error")
	}
	mustContain(t, err.Error(), "apiserver.crt is missing", "external CA mode")
	// The other CAs are still ours: only leaves of the external one are required.
	os.Remove(filepath.Join(dir, "front-proxy-client.crt"))
	os.Remove(filepath.Join(dir, "front-proxy-client.key"))
	if err := EnsureCerts(cfg, p, []string{FrontProxyClient}, Options{Now: fixedClock(t0)}); err != nil {
		t.Fatalf("front-proxy-client with a local front-proxy-ca: %v", err)
	}
}

func TestEnsureCertsDryRun(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p := paths.MustUnder(t.TempDir())
	var log bytes.Buffer
	if err := EnsureCerts(cfg, p, nil, Options{Files: fsutil.NewDryRun(&log), Log: &log, Now: fixedClock(t0)}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(p.Root())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("dry run created %v", entries)
	}
	dir := certDir(p, cfg)
	for _, f := range allFiles {
		mustContain(t, log.String(), "[dryrun] Would write file "+filepath.Join(dir, f)+"\n")
	}
	if n := strings.Count(log.String(), "[dryrun] Would write file"); n != len(allFiles) {
		t.Errorf("%d would-write lines, want %d", n, len(allFiles))
	}

	// Phase by phase, as `init --dry-run` runs them: the leaves' CA exists only on paper.
	log.Reset()
	for _, n := range CertNames(cfg) {
		if err := EnsureCerts(cfg, p, []string{n}, Options{Files: fsutil.NewDryRun(&log), Log: &log, Now: fixedClock(t0)}); err != nil {
			t.Fatalf("dry run of phase %s: %v", n, err)
		}
	}
	if entries, _ := os.ReadDir(p.Root()); len(entries) != 0 {
		t.Errorf("phase-by-phase dry run created %v", entries)
	}
	if n := strings.Count(log.String(), "[dryrun] Would write file"); n != len(allFiles) {
		t.Errorf("phase by phase: %d would-write lines, want %d", n, len(allFiles))
	}

	// On an existing PKI a dry run reports nothing to write and still validates.
	p2, _ := newPKI(t, cfg)
	log.Reset()
	before := snapshot(t, p2.Root())
	if err := EnsureCerts(cfg, p2, nil, Options{Files: fsutil.NewDryRun(&log), Log: &log, Now: fixedClock(t0)}); err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, before, snapshot(t, p2.Root()))
	if strings.Contains(log.String(), "Would write") {
		t.Errorf("dry run over a complete PKI would write:\n%s", log.String())
	}
}

func TestEnsureCertsSubsetsAndNames(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p := paths.MustUnder(t.TempDir())
	o := Options{Now: fixedClock(t0)}
	// Phase by phase, as `init phase certs <name>` does, in any order once the CA exists.
	for _, n := range []string{CA, APIServer, ServiceAccount} {
		if err := EnsureCerts(cfg, p, []string{n}, o); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	dir := certDir(p, cfg)
	for _, f := range []string{"ca.crt", "apiserver.key", "sa.pub"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "front-proxy-ca.crt")); err == nil {
		t.Error("front-proxy-ca created although not requested")
	}

	if err := EnsureCerts(cfg, p, []string{"bogus"}, o); err == nil || !strings.Contains(err.Error(), `unknown certificate "bogus"`) {
		t.Errorf("unknown name: %v", err)
	}
	ext := testConfig()
	ext.Cluster.Etcd = config.Etcd{External: &config.ExternalEtcd{Endpoints: []string{"https://10.0.0.1:2379"}}}
	if err := EnsureCerts(ext, p, []string{EtcdCA}, o); err == nil || !strings.Contains(err.Error(), "external etcd") {
		t.Errorf("etcd-ca with external etcd: %v", err)
	}

	// sa.pub is derived again from an existing sa.key.
	key := snapshot(t, dir)["sa.key"]
	os.Remove(filepath.Join(dir, "sa.pub"))
	if err := EnsureCerts(cfg, p, []string{ServiceAccount}, o); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	if !bytes.Equal(after["sa.key"].data, key.data) {
		t.Error("sa.key was replaced")
	}
	if _, ok := after["sa.pub"]; !ok {
		t.Error("sa.pub not re-derived")
	}
}

func TestCertNames(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	want := []string{"ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client", "etcd-ca", "etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client", "sa"}
	if got := CertNames(cfg); !slices.Equal(got, want) {
		t.Errorf("local etcd: %v", got)
	}
	if got := CertNames(nil); !slices.Equal(got, want) {
		t.Errorf("nil config: %v", got)
	}
	cfg.Cluster.Etcd = config.Etcd{External: &config.ExternalEtcd{Endpoints: []string{"https://10.0.0.1:2379"}}}
	want = []string{"ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client", "sa"}
	if got := CertNames(cfg); !slices.Equal(got, want) {
		t.Errorf("external etcd: %v", got)
	}
	p, _ := newPKI(t, cfg)
	files := snapshot(t, certDir(p, cfg))
	if len(files) != 12 {
		t.Errorf("external etcd: %d files, want 12", len(files))
	}
	if _, err := os.Stat(filepath.Join(certDir(p, cfg), "etcd")); err == nil {
		t.Error("external etcd: etcd/ dir created")
	}
}

// TestCertSpecsGolden pins the whole certificate list (names, files, identities, usages, SANs)
// of a typical configuration.
func TestCertSpecsGolden(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Cluster.ControlPlaneEndpoint = "k8s.example.com"
	cfg.Cluster.APIServer.CertSANs = []string{"203.0.113.7"}
	specs, err := CertSpecs(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range specs {
		signer := s.CAName
		if s.IsCA() {
			signer = "self"
		}
		var usages []string
		for _, u := range s.Usages {
			usages = append(usages, extKeyUsageName(u))
		}
		fmt.Fprintf(&b, "%s\n  files: %s %s\n  CN: %s\n  O: %v\n  signed by: %s\n  ext key usage: %v\n  DNS: %v\n  IP: %v\n",
			s.Name, s.CertFile(), s.KeyFile(), s.CommonName, s.Organization, signer, usages, s.AltNames.DNSNames, ipStrings(s.AltNames.IPs))
	}
	fmt.Fprintf(&b, "%s\n  files: %s %s\n", ServiceAccount, SAKeyFile, SAPubFile)
	checkGolden(t, "certspecs.golden", []byte(b.String()))
}

func TestPublicKeyPin(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p, _ := newPKI(t, cfg)
	ca, key, err := LoadCA(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(ca.PublicKey, key.Public()) {
		t.Error("LoadCA: key does not match")
	}
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	if got, want := PublicKeyPin(ca), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("pin %s, want %s", got, want)
	}

	if _, _, err := LoadCA(paths.MustUnder(t.TempDir()), cfg); err == nil || !strings.Contains(err.Error(), "kubestrap init phase certs ca") {
		t.Errorf("LoadCA without a CA: %v", err)
	}
	os.Remove(filepath.Join(certDir(p, cfg), "ca.key"))
	if _, _, err := LoadCA(p, cfg); err == nil || !strings.Contains(err.Error(), "external CA") {
		t.Errorf("LoadCA without ca.key: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A warning about a dropped SAN belongs to the certificate it concerns, so phase-by-phase runs do
// not repeat it for every certificate.
func TestEnsureCertsWarnsOnlyForItsCertificate(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Cluster.APIServer.CertSANs = []string{"bad_name"}
	p := paths.MustUnder(t.TempDir())
	for _, tc := range []struct {
		name string
		want bool
	}{{CA, false}, {APIServerKubeletClient, false}, {APIServer, true}} {
		var log bytes.Buffer
		if err := EnsureCerts(cfg, p, []string{tc.name}, Options{Log: &log, Now: fixedClock(t0)}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(log.String(), `ignoring apiServer.certSANs entry "bad_name"`); got != tc.want {
			t.Errorf("%s: warning printed=%v, want %v:\n%s", tc.name, got, tc.want, log.String())
		}
	}
}
