// Package etcdtest runs real etcd members in the test process (go.etcd.io/etcd/server/v3/embed)
// on loopback addresses, with TLS made by internal/pki as init makes the etcd certificates, for
// tests of code that changes etcd membership (etcdcluster, reset, join). Only tests import it,
// so no kubestrap program links the etcd server through it.
package etcdtest

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/pki"
)

// Hosts are the loopback addresses members listen on, one per member, so that members can share
// port numbers as stacked members on separate nodes do.
var Hosts = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

// PKI is an etcd PKI directory laid out as kubeadm's: ca.crt, and one pair valid for every
// address in Hosts that serves and authenticates peers and clients, also under the healthcheck
// client's names (healthcheck-client.crt/.key), which reset uses.
type PKI struct {
	Dir, CA, Cert, Key string
}

// NewPKI writes a PKI into a new temporary directory.
func NewPKI(t testing.TB) PKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, err := pki.GenerateKey(config.AlgorithmECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewSelfSignedCA(pki.CertConfig{CommonName: "etcd-ca", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.GenerateKey(config.AlgorithmECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	var ips []net.IP
	for _, h := range Hosts {
		ips = append(ips, net.ParseIP(h))
	}
	cert, err := pki.NewSignedCert(pki.CertConfig{
		CommonName: "etcd-test", AltNames: certutil.AltNames{DNSNames: []string{"localhost"}, IPs: ips},
		Usages:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
	}, key, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	p := PKI{Dir: dir, CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key")}
	for name, data := range map[string][]byte{
		"ca.crt": pki.EncodeCertPEM(ca), "server.crt": pki.EncodeCertPEM(cert), "server.key": keyPEM,
		"healthcheck-client.crt": pki.EncodeCertPEM(cert), "healthcheck-client.key": keyPEM,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// Ports returns a client and a peer port free on every address in Hosts.
func Ports(t testing.TB) (client, peer int) {
	t.Helper()
	var ports []int
	for len(ports) < 2 {
		l, err := net.Listen("tcp", Hosts[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		free := true
		for _, h := range Hosts[1:] {
			if l2, err := net.Listen("tcp", net.JoinHostPort(h, fmt.Sprint(port))); err != nil {
				free = false
			} else {
				l2.Close()
			}
		}
		l.Close()
		if free {
			ports = append(ports, port)
		}
	}
	return ports[0], ports[1]
}

// Member is one in-process etcd member.
type Member struct {
	Name, Host         string
	PeerURL, ClientURL string
	dir                string
	e                  *embed.Etcd
}

// NewMember describes member name on host with the given ports; Start runs it.
func NewMember(t testing.TB, name, host string, clientPort, peerPort int) *Member {
	return &Member{Name: name, Host: host,
		ClientURL: fmt.Sprintf("https://%s", net.JoinHostPort(host, fmt.Sprint(clientPort))),
		PeerURL:   fmt.Sprintf("https://%s", net.JoinHostPort(host, fmt.Sprint(peerPort))),
		dir:       t.TempDir()}
}

// Args are the member's command-line flags as kubestrap's etcd would have them, for tests that
// read a member's flags (reset's layout).
func (m *Member) Args(p PKI, initialCluster string) []string {
	return []string{
		"--name=" + m.Name,
		"--listen-client-urls=" + m.ClientURL, "--advertise-client-urls=" + m.ClientURL,
		"--listen-peer-urls=" + m.PeerURL, "--initial-advertise-peer-urls=" + m.PeerURL,
		"--initial-cluster=" + initialCluster,
		"--trusted-ca-file=" + p.CA, "--cert-file=" + p.Cert, "--key-file=" + p.Key,
	}
}

// Start runs the member with initialCluster; state is "new" or "existing". A new member's start
// waits for it to be ready only when it alone makes the cluster (others are started together).
func (m *Member) Start(t testing.TB, p PKI, initialCluster, state string) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.dir
	pu, _ := url.Parse(m.PeerURL)
	cu, _ := url.Parse(m.ClientURL)
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.InitialCluster = initialCluster
	cfg.ClusterState = state
	tls := transport.TLSInfo{CertFile: p.Cert, KeyFile: p.Key, TrustedCAFile: p.CA, ClientCertAuth: true}
	cfg.ClientTLSInfo, cfg.PeerTLSInfo = tls, tls
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(m.dir, "etcd.log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("starting etcd %s: %v", m.Name, err)
	}
	m.e = e
	t.Cleanup(m.Stop)
	if state == embed.ClusterStateFlagNew && !strings.Contains(initialCluster, ",") {
		m.WaitReady(t)
	}
}

// WaitReady waits until the member serves requests.
func (m *Member) WaitReady(t testing.TB) {
	t.Helper()
	select {
	case <-m.e.Server.ReadyNotify():
	case <-time.After(2 * time.Minute):
		t.Fatalf("etcd %s did not become ready", m.Name)
	}
}

// Stop stops the member (a powered-off node); stopping it again does nothing.
func (m *Member) Stop() {
	if m.e != nil {
		m.e.Close()
		m.e = nil
	}
}

// InitialCluster is --initial-cluster for members.
func InitialCluster(members ...*Member) string {
	var parts []string
	for _, m := range members {
		parts = append(parts, m.Name+"="+m.PeerURL)
	}
	return strings.Join(parts, ",")
}

// StartCluster starts a new cluster of one member per name, the i-th on Hosts[i], all on the same
// ports, and waits until every member is ready.
func StartCluster(t testing.TB, p PKI, names ...string) []*Member {
	t.Helper()
	if len(names) > len(Hosts) {
		t.Fatalf("at most %d members", len(Hosts))
	}
	client, peer := Ports(t)
	var members []*Member
	for i, n := range names {
		members = append(members, NewMember(t, n, Hosts[i], client, peer))
	}
	ic := InitialCluster(members...)
	for _, m := range members {
		m.Start(t, p, ic, embed.ClusterStateFlagNew)
	}
	for _, m := range members {
		m.WaitReady(t)
	}
	return members
}
