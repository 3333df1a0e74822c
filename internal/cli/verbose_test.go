package cli

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestVerbosityFiles: -v 1 reports every file written (path, mode, size), and what a dry run
// would write; -v 0 reports none.
func TestVerbosityFiles(t *testing.T) {
	t.Parallel()
	base := []string{"init", "phase", "certs", "all", "--apiserver-advertise-address", "127.0.0.1", "--node-name", "n1"}
	root := t.TempDir()
	_, stderr, code := runCLI(t, 0, append(base, "--root-dir", root, "-v", "1")...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	pkiDir := filepath.Join(root, "etc", "kubernetes", "pki")
	for _, re := range []string{
		`(?m)^\[v1\] wrote ` + regexp.QuoteMeta(filepath.Join(pkiDir, "ca.key")) + ` \(mode 0600, \d+ bytes\)$`,
		`(?m)^\[v1\] wrote ` + regexp.QuoteMeta(filepath.Join(pkiDir, "ca.crt")) + ` \(mode 0644, \d+ bytes\)$`,
		`(?m)^\[v1\] wrote ` + regexp.QuoteMeta(filepath.Join(pkiDir, "sa.key")) + ` \(mode 0600, \d+ bytes\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(stderr) {
			t.Errorf("-v 1 output lacks %s:\n%s", re, stderr)
		}
	}
	if strings.Contains(stderr, "PRIVATE KEY") {
		t.Error("-v 1 shows key material")
	}

	_, stderr, _ = runCLI(t, 0, append(base, "--root-dir", t.TempDir())...)
	if strings.Contains(stderr, "[v1]") {
		t.Errorf("-v 0 printed verbose lines:\n%s", stderr)
	}

	dry := t.TempDir()
	_, stderr, code = runCLI(t, 0, append(base, "--root-dir", dry, "--dry-run", "-v", "1")...)
	want := `(?m)^\[v1\] would write ` + regexp.QuoteMeta(filepath.Join(dry, "etc", "kubernetes", "pki", "ca.key")) + ` \(mode 0600, \d+ bytes; dry run\)$`
	if code != 0 || !regexp.MustCompile(want).MatchString(stderr) {
		t.Errorf("--dry-run -v 1: exit %d, want %s:\n%s", code, want, stderr)
	}
}

// TestVerbosityAPI: -v 2 logs each API request of a command (here token list against a fake
// API server) with method, URL and status, and never the credentials.
func TestVerbosityAPI(t *testing.T) {
	t.Parallel()
	const token = "abcdef.q7w8e9r0t1y2u3i4"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"kind":"SecretList","apiVersion":"v1","items":[]}`))
	}))
	defer srv.Close()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: srv.URL, CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	path := filepath.Join(t.TempDir(), "admin.conf")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}

	_, stderr, code := runCLI(t, 0, "token", "list", "--kubeconfig", path, "--root-dir", t.TempDir(), "-v", "2")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	want := `(?m)^\[v2\] GET ` + regexp.QuoteMeta(srv.URL+"/api/v1/namespaces/kube-system/secrets?") + `\S+ 200 OK in \d+m?s$`
	if !regexp.MustCompile(want).MatchString(stderr) {
		t.Errorf("-v 2 output lacks %s:\n%s", want, stderr)
	}
	if strings.Contains(stderr, "q7w8e9r0t1y2u3i4") || strings.Contains(stderr, "Bearer") {
		t.Errorf("-v 2 shows the credentials:\n%s", stderr)
	}
	_, stderr, _ = runCLI(t, 0, "token", "list", "--kubeconfig", path, "--root-dir", t.TempDir(), "-v", "1")
	if strings.Contains(stderr, "[v2]") {
		t.Errorf("-v 1 logged API requests:\n%s", stderr)
	}
}

func TestVerbosityNegative(t *testing.T) {
	t.Parallel()
	_, stderr, code := runCLI(t, 0, "version", "-v", "-1")
	if code == 0 || !strings.Contains(stderr, "is negative") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}
