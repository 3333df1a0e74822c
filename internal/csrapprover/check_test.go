package csrapprover

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubestrap/kubestrap/internal/config"
)

var (
	keysOnce       sync.Once
	ecKey          crypto.Signer
	rsaKey         crypto.Signer
	nodeAddresses  = map[string][]netip.Addr{"worker-1": {netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")}}
	kubeletServing = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
)

func keys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	})
}

// request is what a kubelet on worker-1 sends (client-go's certificate manager): CN and O of
// the node, its name as DNS SAN, its addresses as IP SANs, signed with its key.
type request struct {
	key      crypto.Signer
	cn       string
	orgs     []string
	dns      []string
	ips      []string
	uris     []string
	emails   []string
	username string
	groups   []string
	usages   []certificatesv1.KeyUsage
	signer   string
	// corrupt replaces the signature's last byte.
	corrupt bool
}

func kubeletRequest() request {
	return request{
		key: ecKey, cn: "system:node:worker-1", orgs: []string{"system:nodes"},
		dns: []string{"worker-1"}, ips: []string{"10.0.0.5", "fd00::5"},
		username: "system:node:worker-1", groups: []string{"system:nodes", "system:authenticated"},
		usages: kubeletServing, signer: certificatesv1.KubeletServingSignerName,
	}
}

func (r request) csr(t *testing.T, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.cn, Organization: r.orgs}, DNSNames: r.dns, EmailAddresses: r.emails}
	for _, ip := range r.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	for _, u := range r.uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, r.key)
	if err != nil {
		t.Fatal(err)
	}
	if r.corrupt {
		der[len(der)-1] ^= 0xff
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: r.signer,
			Usages:     r.usages,
			Username:   r.username,
			Groups:     r.groups,
		},
	}
}

// TestCheck: what a kubelet sends for itself is approved, for ECDSA and RSA keys; each way of
// asking for more (or for someone else) fails the check it should, and says what was wrong.
func TestCheck(t *testing.T) {
	keys(t)
	for _, tc := range []struct {
		name   string
		edit   func(*request)
		check  string // "" = approved
		detail string
	}{
		{name: "kubelet ECDSA", edit: func(*request) {}},
		{name: "kubelet RSA with key encipherment", edit: func(r *request) {
			r.key = rsaKey
			r.usages = append(r.usages, certificatesv1.UsageKeyEncipherment)
		}},
		{name: "IP SANs only", edit: func(r *request) { r.dns = nil }},
		{name: "DNS SAN only needs no recorded addresses", edit: func(r *request) {
			r.ips = nil
			r.username, r.cn = "system:node:worker-2", "system:node:worker-2"
			r.dns = []string{"worker-2"}
		}},
		{name: "IPv4-mapped IPv6 of a join address", edit: func(r *request) { r.ips = []string{"::ffff:10.0.0.5"} }},

		{name: "other signer", edit: func(r *request) { r.signer = certificatesv1.KubeAPIServerClientKubeletSignerName },
			check: CheckSigner, detail: `signer is "kubernetes.io/kube-apiserver-client-kubelet"`},
		{name: "requester not a node", edit: func(r *request) { r.username = "alice" },
			check: CheckRequester, detail: `requested by "alice", not by a node`},
		{name: "requester empty node name", edit: func(r *request) { r.username = "system:node:" },
			check: CheckRequester, detail: `requested by "system:node:"`},
		{name: "requester not in system:nodes", edit: func(r *request) { r.groups = []string{"system:authenticated"} },
			check: CheckRequester, detail: `is not in group system:nodes`},
		{name: "bad signature", edit: func(r *request) { r.corrupt = true },
			check: CheckRequest, detail: "signature does not verify"},
		{name: "CN of another node", edit: func(r *request) { r.cn = "system:node:worker-2" },
			check: CheckSubject, detail: `common name "system:node:worker-2" is not the requester "system:node:worker-1"`},
		{name: "O missing", edit: func(r *request) { r.orgs = nil },
			check: CheckSubject, detail: `organization is [], want exactly ["system:nodes"]`},
		{name: "O with extra group", edit: func(r *request) { r.orgs = []string{"system:nodes", "system:masters"} },
			check: CheckSubject, detail: "want exactly"},
		{name: "client auth usage", edit: func(r *request) { r.usages = append(r.usages, certificatesv1.UsageClientAuth) },
			check: CheckUsages, detail: `usages ["digital signature" "server auth" "client auth"] are not exactly ["digital signature" "server auth"] (what a kubelet asks for with an ECDSA key)`},
		{name: "server auth missing", edit: func(r *request) { r.usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature} },
			check: CheckUsages, detail: "are not exactly"},
		{name: "key encipherment with ECDSA", edit: func(r *request) { r.usages = append(r.usages, certificatesv1.UsageKeyEncipherment) },
			check: CheckUsages, detail: "with an ECDSA key"},
		{name: "RSA without key encipherment", edit: func(r *request) { r.key = rsaKey },
			check: CheckUsages, detail: "with an RSA key"},
		{name: "URI SAN", edit: func(r *request) { r.uris = []string{"spiffe://cluster/ns/default"} },
			check: CheckSANs, detail: "URI or email subject alternative names are not allowed"},
		{name: "email SAN", edit: func(r *request) { r.emails = []string{"root@worker-1"} },
			check: CheckSANs, detail: "URI or email"},
		{name: "no SANs", edit: func(r *request) { r.dns, r.ips = nil, nil },
			check: CheckSANs, detail: "names no DNS name or IP address"},
		{name: "foreign DNS SAN", edit: func(r *request) { r.dns = []string{"worker-1", "kubernetes.default.svc"} },
			check: CheckDNSNames, detail: `DNS name "kubernetes.default.svc" is not the node's name "worker-1"`},
		{name: "foreign IP SAN", edit: func(r *request) { r.ips = []string{"10.0.0.5", "10.0.0.1"} },
			check: CheckIPs, detail: `IP address 10.0.0.1 is not an address node "worker-1" had when it joined (10.0.0.5,fd00::5)`},
		{name: "no join addresses recorded", edit: func(r *request) {
			r.username, r.cn, r.dns = "system:node:worker-3", "system:node:worker-3", []string{"worker-3"}
		}, check: CheckIPs, detail: `no join addresses are recorded for node "worker-3"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kubeletRequest()
			tc.edit(&r)
			err := Check(r.csr(t, "csr-1"), nodeAddresses)
			if tc.check == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("got %v, want a rejection by the %s check", err, tc.check)
			}
			if rej.Check != tc.check || !strings.Contains(rej.Detail, tc.detail) {
				t.Errorf("got %s: %q\nwant %s: ...%q...", rej.Check, rej.Detail, tc.check, tc.detail)
			}
		})
	}
}

func TestParseAddresses(t *testing.T) {
	got, err := ParseAddresses(" 10.0.0.5,fd00::5,::ffff:10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	if FormatAddresses(got) != "10.0.0.5,fd00::5" {
		t.Errorf("got %s", FormatAddresses(got))
	}
	for _, bad := range []string{"", "10.0.0.5,", "worker-1", "fe80::1%eth0", "10.0.0.0/24"} {
		if _, err := ParseAddresses(bad); err == nil {
			t.Errorf("ParseAddresses(%q) succeeded", bad)
		}
	}
}

func TestNodeAddresses(t *testing.T) {
	fallback := func() (string, error) { return "10.0.0.5", nil }
	noAddress := func() (string, error) { return "", errors.New("no default route") }
	for _, tc := range []struct {
		name     string
		args     []config.Arg
		fallback func() (string, error)
		want     string
		err      string
	}{
		{name: "default", fallback: fallback, want: "10.0.0.5"},
		{name: "node-ip", args: []config.Arg{{Name: "node-ip", Value: "192.168.1.7,fd00::7"}}, fallback: noAddress, want: "192.168.1.7,fd00::7"},
		{name: "last node-ip wins", args: []config.Arg{{Name: "node-ip", Value: "192.168.1.7"}, {Name: "node-ip", Value: "192.168.1.8"}}, fallback: noAddress, want: "192.168.1.8"},
		{name: "unspecified node-ip", args: []config.Arg{{Name: "node-ip", Value: "::"}}, fallback: fallback, want: "10.0.0.5"},
		{name: "bad node-ip", args: []config.Arg{{Name: "node-ip", Value: "worker-1"}}, fallback: fallback, err: `kubeletExtraArgs node-ip="worker-1"`},
		{name: "no address", fallback: noAddress, err: "cannot tell the node's address (set kubeletExtraArgs node-ip to name it): no default route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NodeAddresses(tc.args, tc.fallback)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if tc.name == "no address" && !errors.Is(err, ErrNoAddress) {
					t.Errorf("%v is not ErrNoAddress", err)
				}
				return
			}
			if err != nil || FormatAddresses(got) != tc.want {
				t.Errorf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
