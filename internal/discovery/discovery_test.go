package discovery

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/pki"
)

const (
	testToken   = "abcdef.0123456789abcdef"
	testTokenID = "abcdef"
)

// fakeCluster is an HTTPS server that answers like a kube-apiserver for what discovery reads:
// kube-public/cluster-info and /api (401 for unknown bearer tokens).
type fakeCluster struct {
	t      *testing.T
	srv    *httptest.Server
	ca     *x509.Certificate
	caPEM  []byte
	server string // https://127.0.0.1:port

	mu sync.Mutex
	// content is cluster-info's kubeconfig; tokens maps a token id to its secret for signing.
	content  string
	tokens   map[string]string
	signFrom int // signatures appear from this request number on (1-based)
	// contentAfter replaces content from request number contentAfterN on.
	contentAfter  string
	contentAfterN int
	validBearer   map[string]bool

	requests atomic.Int32
	// authorization lists every Authorization header received, on any path.
	authorization []string
}

// authHeaders returns the Authorization headers the server has received.
func (f *fakeCluster) authHeaders() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.authorization...)
}

func newCA(t *testing.T, cn string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := pki.GenerateKey(config.AlgorithmECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, err := pki.NewSelfSignedCA(pki.CertConfig{CommonName: cn, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func servingCert(t *testing.T, ca *x509.Certificate, caKey crypto.Signer) tls.Certificate {
	t.Helper()
	key, err := pki.GenerateKey(config.AlgorithmECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := pki.NewSignedCert(pki.CertConfig{
		CommonName: "kube-apiserver",
		AltNames:   certutil.AltNames{IPs: []net.IP{net.ParseIP("127.0.0.1")}},
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore:  now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	}, key, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}

// newFakeCluster starts a server whose certificate is signed by a fresh CA, publishing that CA in
// cluster-info, signed for testToken.
func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	ca, caKey := newCA(t, "kubernetes")
	return newFakeClusterWith(t, ca, caKey, ca)
}

// newFakeClusterWith serves with a certificate from servingCA but publishes publishedCA.
func newFakeClusterWith(t *testing.T, servingCA *x509.Certificate, servingKey crypto.Signer, publishedCA *x509.Certificate) *fakeCluster {
	t.Helper()
	f := &fakeCluster{t: t, ca: publishedCA, caPEM: pki.EncodeCertPEM(publishedCA),
		tokens: map[string]string{testTokenID: "0123456789abcdef"}, signFrom: 1,
		validBearer: map[string]bool{testToken: true}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{servingCert(t, servingCA, servingKey)}}
	// The certificate tests make clients hang up mid-handshake on purpose.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.server = f.srv.URL
	f.content = f.kubeconfig(f.server)
	return f
}

func (f *fakeCluster) kubeconfig(server string) string {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[""] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: f.caPEM}
	b, err := clientcmd.Write(*kc)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func (f *fakeCluster) endpoint() string { return strings.TrimPrefix(f.server, "https://") }

func (f *fakeCluster) hash() string { return pki.PublicKeyPin(f.ca) }

func (f *fakeCluster) serve(w http.ResponseWriter, r *http.Request) {
	if a := r.Header.Get("Authorization"); a != "" {
		f.mu.Lock()
		f.authorization = append(f.authorization, a)
		f.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/v1/namespaces/kube-public/configmaps/cluster-info":
		n := int(f.requests.Add(1))
		f.mu.Lock()
		content := f.content
		if f.contentAfterN > 0 && n >= f.contentAfterN {
			content = f.contentAfter
		}
		data := map[string]string{bootstrapapi.KubeConfigKey: content}
		if n >= f.signFrom {
			for id, secret := range f.tokens {
				sig, err := jws.ComputeDetachedSignature(content, id, secret)
				if err != nil {
					f.t.Error(err)
				}
				data[bootstrapapi.JWSSignatureKeyPrefix+id] = sig
			}
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"},
			Data:       data,
		})
	case "/api":
		bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		ok := f.validBearer[bearer]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(&metav1.Status{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
				Status:   metav1.StatusFailure, Reason: metav1.StatusReasonUnauthorized, Code: 401, Message: "Unauthorized",
			})
			return
		}
		json.NewEncoder(w).Encode(&metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	default:
		http.NotFound(w, r)
	}
}

func tokenOptions(f *fakeCluster) TokenOptions {
	return TokenOptions{
		Endpoint:          f.endpoint(),
		Token:             testToken,
		CACertHashes:      []string{f.hash()},
		Timeout:           5 * time.Second,
		Interval:          20 * time.Millisecond,
		UnknownTokenAfter: 100 * time.Millisecond,
	}
}

func TestTokenDiscovery(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	var log strings.Builder
	o := tokenOptions(f)
	o.Log = &log
	res, err := Token(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != f.server || string(res.CAData) != string(f.caPEM) || !res.CA.Equal(f.ca) {
		t.Errorf("result = %+v, want server %s and the cluster CA", res, f.server)
	}
	if !strings.Contains(log.String(), "pinned CA "+f.hash()) {
		t.Errorf("log does not say the CA was pinned:\n%s", log.String())
	}
	// Two reads: one before trusting TLS, one verified against the pinned CA.
	if n := f.requests.Load(); n != 2 {
		t.Errorf("cluster-info read %d times, want 2", n)
	}
}

func TestTokenDiscoveryHashCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	o := tokenOptions(f)
	o.CACertHashes = []string{"sha256:" + strings.ToUpper(strings.TrimPrefix(f.hash(), "sha256:"))}
	if _, err := Token(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func TestTokenDiscoveryWrongHash(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	o := tokenOptions(f)
	wrong := "sha256:" + strings.Repeat("ab", 32)
	o.CACertHashes = []string{wrong}
	start := time.Now()
	_, err := Token(context.Background(), o)
	want := "the cluster CA's public key hash is " + f.hash() + ", not " + wrong
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("a wrong hash took %s to report; it cannot be fixed by retrying", time.Since(start))
	}
}

func TestTokenDiscoveryWrongSecret(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	o := tokenOptions(f)
	o.Token = testTokenID + ".ffffffffffffffff"
	_, err := Token(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "does not match the token's secret") {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenDiscoveryUnknownTokenWithPin(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	o := tokenOptions(f)
	o.Token = "zzzzzz.0123456789abcdef"
	o.Timeout = time.Minute
	start := time.Now()
	_, err := Token(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), `no JWS signature for token id "zzzzzz"`) || !strings.Contains(err.Error(), "rejects the token") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("an unknown token took %s to report with a pinned CA", d)
	}
}

func TestTokenDiscoveryUnknownTokenUnsafeWaitsForTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	o := tokenOptions(f)
	o.Token = "zzzzzz.0123456789abcdef"
	o.CACertHashes = nil
	o.UnsafeSkipCAVerification = true
	o.Timeout = 300 * time.Millisecond
	_, err := Token(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "within 300ms") || !strings.Contains(err.Error(), `no JWS signature for token id "zzzzzz"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenDiscoveryUnsafeSkip(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	o := tokenOptions(f)
	o.CACertHashes = nil
	o.UnsafeSkipCAVerification = true
	res, err := Token(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CA.Equal(f.ca) {
		t.Error("unsafe discovery did not return the cluster CA")
	}
}

func TestTokenDiscoveryContentChanged(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	// The verified (second) read serves other content, still validly signed.
	f.contentAfter = f.kubeconfig("https://203.0.113.9:6443")
	f.contentAfterN = 2
	_, err := Token(context.Background(), tokenOptions(f))
	if err == nil || !strings.Contains(err.Error(), "differs from the copy read before verification") {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenDiscoveryWaitsForSignature(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	f.signFrom = 4 // the bootstrapsigner signs after three reads
	res, err := Token(context.Background(), tokenOptions(f))
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != f.server {
		t.Errorf("server = %s", res.Server)
	}
	if n := f.requests.Load(); n != 5 {
		t.Errorf("cluster-info read %d times, want 3 unsigned + 2", n)
	}
}

func TestTokenDiscoveryServerCertNotFromPublishedCA(t *testing.T) {
	t.Parallel()
	servingCA, servingKey := newCA(t, "impostor")
	published, _ := newCA(t, "kubernetes")
	f := newFakeClusterWith(t, servingCA, servingKey, published)
	_, err := Token(context.Background(), tokenOptions(f))
	if err == nil || !strings.Contains(err.Error(), "does not present a certificate that the cluster CA from cluster-info verifies") {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenDiscoveryUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	o := TokenOptions{Endpoint: addr, Token: testToken, CACertHashes: []string{"sha256:" + strings.Repeat("00", 32)},
		Timeout: 300 * time.Millisecond, Interval: 20 * time.Millisecond}
	_, err = Token(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "within 300ms") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenDiscoveryCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	f.signFrom = 1 << 30
	o := tokenOptions(f)
	o.CACertHashes, o.UnsafeSkipCAVerification = nil, true
	o.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Token(ctx, o); err == nil {
		t.Fatal("no error after cancellation")
	}
	if time.Since(start) > 5*time.Second {
		t.Error("discovery ignored the cancelled context")
	}
}

func TestTokenOptionsValidate(t *testing.T) {
	t.Parallel()
	good := TokenOptions{Endpoint: "10.0.0.1:6443", Token: testToken, CACertHashes: []string{"sha256:" + strings.Repeat("0a", 32)}, Timeout: time.Minute}
	for _, tc := range []struct {
		name   string
		mutate func(*TokenOptions)
		want   string
	}{
		{"ok", func(*TokenOptions) {}, ""},
		{"malformed token", func(o *TokenOptions) { o.Token = "abcdef.short" }, "abcdef.<redacted> is malformed"},
		{"token never echoed", func(o *TokenOptions) { o.Token = "ABCDEF0123456789abcdef" }, "<redacted, 22 characters> is malformed"},
		{"hash without prefix", func(o *TokenOptions) { o.CACertHashes = []string{strings.Repeat("0a", 32)} }, "no format prefix"},
		{"hash other algorithm", func(o *TokenOptions) { o.CACertHashes = []string{"md5:0a"} }, "unsupported format"},
		{"hash too short", func(o *TokenOptions) { o.CACertHashes = []string{"sha256:0a0a"} }, "64 hex digits"},
		{"no hash", func(o *TokenOptions) { o.CACertHashes = nil }, "--discovery-token-unsafe-skip-ca-verification"},
		{"no hash but unsafe", func(o *TokenOptions) { o.CACertHashes, o.UnsafeSkipCAVerification = nil, true }, ""},
		{"endpoint without port", func(o *TokenOptions) { o.Endpoint = "10.0.0.1" }, "must be host:port"},
		{"no endpoint", func(o *TokenOptions) { o.Endpoint = "" }, "no API server endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.mutate(&o)
			err := o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("error echoes the token secret: %v", err)
			}
		})
	}
}

func TestMalformedInputFailsWithoutNetwork(t *testing.T) {
	t.Parallel()
	// 192.0.2.1 (TEST-NET-1) never answers; a network attempt would hang until the timeout.
	o := TokenOptions{Endpoint: "192.0.2.1:6443", Token: "bad", CACertHashes: []string{"sha256:xyz"}, Timeout: time.Minute}
	start := time.Now()
	if _, err := Token(context.Background(), o); err == nil {
		t.Fatal("no error")
	}
	if time.Since(start) > time.Second {
		t.Errorf("malformed input took %s to reject", time.Since(start))
	}
}

func TestCheckPinsSeveral(t *testing.T) {
	t.Parallel()
	a, _ := newCA(t, "a")
	b, _ := newCA(t, "b")
	got, err := CheckPins([]*x509.Certificate{a, b}, []string{"sha256:" + strings.Repeat("00", 32), pki.PublicKeyPin(b)})
	if err != nil || !got.Equal(b) {
		t.Fatalf("CheckPins = %v, %v", got, err)
	}
	_, err = CheckPins([]*x509.Certificate{a}, []string{"sha256:" + strings.Repeat("00", 32), "sha256:" + strings.Repeat("11", 32)})
	if err == nil || !strings.Contains(err.Error(), "not any of") {
		t.Fatalf("err = %v", err)
	}
}

// pinnedPEM keeps exactly the pinned CAs, matching hashes as CheckPins does (case-insensitively):
// it is what the token check trusts.
func TestPinnedPEM(t *testing.T) {
	t.Parallel()
	a, _ := newCA(t, "a")
	b, _ := newCA(t, "b")
	upper := "sha256:" + strings.ToUpper(strings.TrimPrefix(pki.PublicKeyPin(b), "sha256:"))
	got := pinnedPEM([]*x509.Certificate{a, b}, []string{upper})
	want := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Raw})
	if !bytes.Equal(got, want) {
		t.Errorf("pinnedPEM kept:\n%s\nwant only b:\n%s", got, want)
	}
	if got := pinnedPEM([]*x509.Certificate{a, b}, []string{"sha256:" + strings.Repeat("00", 32)}); got != nil {
		t.Errorf("pinnedPEM without a matching hash = %s, want nothing", got)
	}
}

func TestFileDiscovery(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: f.server, CertificateAuthorityData: f.caPEM}
	kc.AuthInfos["bootstrap"] = &clientcmdapi.AuthInfo{Token: testToken}
	kc.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: "bootstrap"}
	kc.CurrentContext = "ctx"
	path := filepath.Join(t.TempDir(), "discovery.conf")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	res, err := File(context.Background(), FileOptions{Location: path, Timeout: 5 * time.Second, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != f.server || res.AuthInfo == nil || res.AuthInfo.Token != testToken {
		t.Errorf("result = %+v", res)
	}

	t.Run("CA by path is refused", func(t *testing.T) {
		kc := kc.DeepCopy()
		kc.Clusters["kubernetes"].CertificateAuthorityData = nil
		kc.Clusters["kubernetes"].CertificateAuthority = "/etc/kubernetes/pki/ca.crt"
		p := filepath.Join(t.TempDir(), "d.conf")
		clientcmd.WriteToFile(*kc, p)
		_, err := File(context.Background(), FileOptions{Location: p, Timeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), "must embed the cluster CA") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := File(context.Background(), FileOptions{Location: filepath.Join(t.TempDir(), "nope"), Timeout: time.Second})
		if err == nil || !os.IsNotExist(unwrapAll(err)) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFileDiscoveryHTTPS(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: f.server, CertificateAuthorityData: f.caPEM}
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer web.Close()
	res, err := File(context.Background(), FileOptions{Location: web.URL + "/cluster.conf", Timeout: 5 * time.Second, HTTPClient: web.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != f.server || res.AuthInfo != nil {
		t.Errorf("result = %+v", res)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
