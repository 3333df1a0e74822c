package discovery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubestrap/kubestrap/internal/pki"
)

// TestTokenNeverSentToServerTrustedOnlyByUnsignedBundle is the man in the middle of issue 10: he
// serves the real cluster-info content with his own CA appended to the bundle, presents a
// certificate of his CA, and has no signature to offer (he does not know the token). The real CA
// matches the pin, so discovery may ask the API server whether it knows the token, but only over
// TLS verified against the pinned CA; his server must never see the token.
func TestTokenNeverSentToServerTrustedOnlyByUnsignedBundle(t *testing.T) {
	t.Parallel()
	realCA, _ := newCA(t, "kubernetes")
	evilCA, evilKey := newCA(t, "mitm")
	f := newFakeClusterWith(t, evilCA, evilKey, realCA)
	f.mu.Lock()
	f.caPEM = append(pki.EncodeCertPEM(realCA), pki.EncodeCertPEM(evilCA)...)
	f.content = f.kubeconfig(f.server)
	f.tokens = map[string]string{} // no JWS signature: the attacker cannot compute one
	f.validBearer = map[string]bool{}
	f.mu.Unlock()

	var log strings.Builder
	o := tokenOptions(f)
	o.Log = &log
	o.Timeout = 3 * time.Second // long enough for several reads on a loaded machine
	_, err := Token(context.Background(), o)
	if err == nil {
		t.Fatal("discovery succeeded against a server without a signature")
	}
	// Positive control: the server was reached and served its bundle, and the pin matched (a
	// pin failure would end discovery at once with another error).
	if n := f.requests.Load(); n < 2 {
		t.Fatalf("cluster-info was read %d times; the test did not exercise discovery", n)
	}
	if !strings.Contains(err.Error(), "no JWS signature") {
		t.Fatalf("err = %v, want the missing signature", err)
	}
	if got := f.authHeaders(); len(got) > 0 {
		t.Errorf("the man in the middle received Authorization headers %q", got)
	}
	for _, out := range []string{err.Error(), log.String()} {
		if strings.Contains(out, "0123456789abcdef") {
			t.Errorf("the token secret appears in the output:\n%s", out)
		}
	}
}

// TestTokenProbeReachesPinnedServer is the other side of the test above: a server whose
// certificate the pinned CA verifies does receive the token probe (and answers 401), so the
// absence of Authorization headers there is due to the trust, not to a probe that never runs.
func TestTokenProbeReachesPinnedServer(t *testing.T) {
	t.Parallel()
	f := newFakeCluster(t)
	f.mu.Lock()
	f.tokens = map[string]string{}
	f.validBearer = map[string]bool{}
	f.mu.Unlock()
	o := tokenOptions(f)
	o.Timeout = 10 * time.Second
	_, err := Token(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "rejects the token") {
		t.Fatalf("err = %v, want the token rejected by the pinned server", err)
	}
	got := f.authHeaders()
	if len(got) == 0 || got[0] != "Bearer "+testToken {
		t.Errorf("Authorization headers = %q, want the token probe", got)
	}
}

// TestPlainHTTPServerRefused: cluster-info (signed, so genuine) or a discovery file naming an
// http:// server would make the TLS bootstrap send the token in clear text.
func TestPlainHTTPServerRefused(t *testing.T) {
	t.Parallel()
	t.Run("cluster-info", func(t *testing.T) {
		t.Parallel()
		f := newFakeCluster(t)
		f.mu.Lock()
		f.content = f.kubeconfig("http://" + f.endpoint())
		f.mu.Unlock()
		_, err := Token(context.Background(), tokenOptions(f))
		if err == nil || !strings.Contains(err.Error(), "not an https URL") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("discovery file", func(t *testing.T) {
		t.Parallel()
		f := newFakeCluster(t)
		kc := clientcmdapi.NewConfig()
		kc.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: "http://" + f.endpoint(), CertificateAuthorityData: f.caPEM}
		kc.AuthInfos["bootstrap"] = &clientcmdapi.AuthInfo{Token: testToken}
		kc.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: "bootstrap"}
		kc.CurrentContext = "ctx"
		path := filepath.Join(t.TempDir(), "discovery.conf")
		if err := clientcmd.WriteToFile(*kc, path); err != nil {
			t.Fatal(err)
		}
		_, err := File(context.Background(), FileOptions{Location: path, Timeout: 5 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "not an https URL") {
			t.Fatalf("err = %v", err)
		}
		if got := f.authHeaders(); len(got) > 0 {
			t.Errorf("the server received %q", got)
		}
	})
	t.Run("discovery URL", func(t *testing.T) {
		t.Parallel()
		_, err := File(context.Background(), FileOptions{Location: "http://192.0.2.1/cluster.conf", Timeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), "plain http") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestNoTokenOverUnverifiedConnection: the one client built without a CA refuses credentials.
func TestNoTokenOverUnverifiedConnection(t *testing.T) {
	t.Parallel()
	if _, err := newClient("https://192.0.2.1:6443", nil, testToken, nil); err == nil {
		t.Fatal("newClient built an unverified client carrying a token")
	}
	if tokenRejected(context.Background(), "https://192.0.2.1:6443", nil, testToken, nil) {
		t.Fatal("tokenRejected gave a verdict without a pinned CA")
	}
}

// TestDiscoveryURLCredentialsNotShown: a discovery URL may carry credentials (user info, a
// pre-signed query); errors and progress lines show it without them.
func TestDiscoveryURLCredentialsNotShown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer srv.Close()
	var log strings.Builder
	loc := strings.Replace(srv.URL, "https://", "https://admin:hunter2@", 1) + "/cluster.conf?X-Signature=s3cr3tsig"
	_, err := File(context.Background(), FileOptions{Location: loc, Timeout: time.Second, HTTPClient: srv.Client(), Log: &log})
	if err == nil || !strings.Contains(err.Error(), "HTTP status 403") {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{"hunter2", "s3cr3tsig", "admin"} {
		if strings.Contains(err.Error()+log.String(), s) {
			t.Errorf("%q shown: %v\n%s", s, err, log.String())
		}
	}
	if got, want := displayLocation(loc), srv.URL+"/cluster.conf?<redacted>"; got != want {
		t.Errorf("displayLocation = %q, want %q", got, want)
	}
	if got := displayLocation("/etc/kubernetes/discovery.conf"); got != "/etc/kubernetes/discovery.conf" {
		t.Errorf("a path changed: %q", got)
	}
}
