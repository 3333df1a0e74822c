package etcdcluster

import (
	"context"
	"crypto/x509"
	"errors"
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

// testPKI is an etcd CA and one certificate for 127.0.0.1 that serves and authenticates both
// peers and clients, made with internal/pki as init makes the etcd certificates.
type testPKI struct{ ca, cert, key string }

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, err := pki.GenerateKey(config.AlgorithmECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewSelfSignedCA(pki.CertConfig{CommonName: "etcd-ca", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.GenerateKey(config.AlgorithmECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.NewSignedCert(pki.CertConfig{
		CommonName: "etcd-test", AltNames: certutil.AltNames{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}},
		Usages:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	}, key, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{ca: filepath.Join(dir, "ca.crt"), cert: filepath.Join(dir, "etcd.crt"), key: filepath.Join(dir, "etcd.key")}
	for path, data := range map[string][]byte{p.ca: pki.EncodeCertPEM(ca), p.cert: pki.EncodeCertPEM(cert), p.key: keyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testMember is an in-process etcd member on loopback.
type testMember struct {
	name         string
	peer, client string
	e            *embed.Etcd
	stopped      bool
}

func newTestMember(t *testing.T, name string) *testMember {
	return &testMember{name: name,
		peer:   fmt.Sprintf("https://127.0.0.1:%d", freePort(t)),
		client: fmt.Sprintf("https://127.0.0.1:%d", freePort(t))}
}

// start runs the member with initialCluster; state is "new" or "existing".
func (m *testMember) start(t *testing.T, p testPKI, initialCluster, state string) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = t.TempDir()
	pu, _ := url.Parse(m.peer)
	cu, _ := url.Parse(m.client)
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.InitialCluster = initialCluster
	cfg.ClusterState = state
	tls := transport.TLSInfo{CertFile: p.cert, KeyFile: p.key, TrustedCAFile: p.ca, ClientCertAuth: true}
	cfg.ClientTLSInfo, cfg.PeerTLSInfo = tls, tls
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(t.TempDir(), "etcd.log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("starting etcd %s: %v", m.name, err)
	}
	m.e = e
	t.Cleanup(m.stop)
	if state == "new" {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(time.Minute):
			t.Fatalf("etcd %s did not become ready", m.name)
		}
	}
}

func (m *testMember) stop() {
	if m.e != nil && !m.stopped {
		m.stopped = true
		m.e.Close()
	}
}

// TestMembershipAgainstRealEtcd grows a real three-member cluster with AddLearner and Promote,
// checks the refusals and the lock, then loses a member and checks the quorum guard.
func TestMembershipAgainstRealEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three etcd members (about 10 s); skipped with -short")
	}
	StatusTimeout = 2 * time.Second // a stopped member is recognised sooner; this test is not parallel
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newTestPKI(t)
	n1, n2, n3 := newTestMember(t, "n1"), newTestMember(t, "n2"), newTestMember(t, "n3")
	n1.start(t, p, "n1="+n1.peer, "new")

	tlsConfig, err := ClientTLS(p.ca, p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctx, []string{n1.client}, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h, total, _, err := Health(ctx, c); err != nil || h != 1 || total != 1 {
		t.Fatalf("one member: Health %d/%d %v", h, total, err)
	}

	// n2 joins as a learner; a second learner is refused while it exists; a retried add of n2
	// returns the same learner.
	l2, ic, err := AddLearner(ctx, c, "n2", n2.peer)
	if err != nil {
		t.Fatal(err)
	}
	if want := "n1=" + n1.peer + ",n2=" + n2.peer; ic != want {
		t.Errorf("initial cluster %q, want %q", ic, want)
	}
	if _, _, err := AddLearner(ctx, c, "n3", n3.peer); err == nil || !strings.Contains(err.Error(), "is a learner") {
		t.Errorf("second learner: %v", err)
	}
	if again, _, err := AddLearner(ctx, c, "n2", n2.peer); err != nil || again.ID != l2.ID {
		t.Errorf("retried add: %x %v, want %x", again.ID, err, l2.ID)
	}
	n2.start(t, p, ic, "existing")
	start := time.Now()
	if err := Promote(ctx, c, l2.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("n2 started and promoted in %s", time.Since(start).Round(time.Millisecond))

	l3, ic, err := AddLearner(ctx, c, "n3", n3.peer)
	if err != nil {
		t.Fatal(err)
	}
	n3.start(t, p, ic, "existing")
	if err := Promote(ctx, c, l3.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	members, err := c.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(votersOf(members)) != 3 {
		t.Fatalf("members %+v, want three voters", members)
	}
	// The members report health once each knows the leader.
	deadline := time.Now().Add(time.Minute)
	for {
		h, total, bad, err := Health(ctx, c)
		if err == nil && h == 3 && total == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("three members: Health %d/%d %v %v", h, total, bad, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The lock: a second holder waits until the first lets go.
	unlock, err := Lock(ctx, c, "/kubestrap/test-lock")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Dial(ctx, []string{n2.client}, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	short, scancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if _, err := Lock(short, c2, "/kubestrap/test-lock"); err == nil {
		t.Error("a second holder took a held lock")
	}
	scancel()
	unlock()
	unlock2, err := Lock(ctx, c2, "/kubestrap/test-lock")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()

	// n3 goes away: removing n1 would leave n2 and a dead n3, refused; removing n3 is safe.
	n3.stop()
	var id1 uint64
	for _, m := range members {
		if m.Name == "n1" {
			id1 = m.ID
		}
	}
	err = Remove(ctx, c, id1, false)
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Healthy != 1 || qe.Remaining != 2 || len(qe.Unhealthy) != 1 || qe.Unhealthy[0].Name != "n3" {
		t.Fatalf("removing n1 with n3 down: %v", err)
	}
	if err := Remove(ctx, c, l3.ID, false); err != nil {
		t.Fatalf("removing the stopped n3: %v", err)
	}
	members, err = c.MemberList(ctx)
	if err != nil || len(members) != 2 {
		t.Errorf("after removing n3: %+v %v", members, err)
	}
}
