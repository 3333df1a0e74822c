package inspect

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// recordedFlagz is testdata/inspect/flagz.txt: the text/plain body of a v1.37 kube-apiserver.
func recordedFlagz(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, "flagz.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var recordedFlags = map[string]string{
	"advertise-address":                "10.0.0.5",
	"allow-privileged":                 "true",
	"authorization-mode":               "[Node,RBAC]",
	"etcd-servers":                     "[https://127.0.0.1:2379]",
	"max-requests-inflight":            "400",
	"secure-port":                      "6443",
	"service-account-signing-key-file": "CLASSIFIED",
}

func TestParseFlagzText(t *testing.T) {
	t.Parallel()
	body := string(recordedFlagz(t))
	// The server picks one of these separators at random; every one must parse the same.
	for _, sep := range []string{"=", ":", ": ", " "} {
		b := strings.ReplaceAll(body, "=", sep)
		got, err := ParseFlagzText([]byte(b))
		if err != nil {
			t.Fatalf("separator %q: %v", sep, err)
		}
		if !reflect.DeepEqual(got, recordedFlags) {
			t.Errorf("separator %q: got %v", sep, got)
		}
	}
	// Empty values and values containing other separators.
	got, err := ParseFlagzText([]byte("\nkube-apiserver flagz\nWarning: x\na: \nb: x: y=z\n"))
	if err != nil || !reflect.DeepEqual(got, map[string]string{"a": "", "b": "x: y=z"}) {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := ParseFlagzText([]byte("\nkube-apiserver flagz\nWarning: x\n<html>\n")); err == nil {
		t.Error("an unrecognised body should be an error")
	}
}

// flagzServer serves /flagz over TLS and writes a kubeconfig for it.
func flagzServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewTLSServer(handler)
	t.Cleanup(srv.Close)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{
		Server:                   srv.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
	}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "secret-token"}
	cfg.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "ctx"
	path := filepath.Join(t.TempDir(), "admin.conf")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFlagz(t *testing.T) {
	t.Parallel()
	text := recordedFlagz(t)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{
			name: "text/plain",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Write(text)
			},
		},
		{
			name: "structured v1beta1",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if !strings.Contains(r.Header.Get("Accept"), "as=Flagz") {
					t.Errorf("Accept %q does not ask for the structured form", r.Header.Get("Accept"))
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"kind":"Flagz","apiVersion":"config.k8s.io/v1beta1","metadata":{"name":"kube-apiserver"},"flags":{"advertise-address":"10.0.0.5","allow-privileged":"true","authorization-mode":"[Node,RBAC]","etcd-servers":"[https://127.0.0.1:2379]","max-requests-inflight":"400","secure-port":"6443","service-account-signing-key-file":"CLASSIFIED"}}`))
			},
		},
		{
			name: "406 falls back to text",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Accept") != "text/plain" {
					http.Error(w, "not acceptable", http.StatusNotAcceptable)
					return
				}
				w.Header().Set("Content-Type", "text/plain")
				w.Write(text)
			},
		},
		{
			name:    "feature gate off",
			handler: http.NotFound,
			wantErr: "ComponentFlagz feature gate",
		},
		{
			name: "forbidden",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "forbidden", http.StatusForbidden)
			},
			wantErr: "needs GET on the non-resource URL /flagz",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kc := flagzServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != FlagzPath || r.Header.Get("Authorization") != "Bearer secret-token" {
					t.Errorf("request %s with %q", r.URL.Path, r.Header.Get("Authorization"))
				}
				tt.handler(w, r)
			})
			cfg, err := RESTConfigFromKubeconfig(kc)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := LoadFlagz(context.Background(), cfg, fakeCatalog)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			var explicit, unknown []string
			for _, f := range inv.Flags {
				got[f.Name] = f.Value
				if f.Explicit {
					explicit = append(explicit, f.Name)
				}
				if f.Unknown {
					unknown = append(unknown, f.Name)
				}
				if f.Origin != "flagz" {
					t.Errorf("%s: origin %q", f.Name, f.Origin)
				}
			}
			if !reflect.DeepEqual(got, recordedFlags) {
				t.Errorf("flags %v", got)
			}
			// Values equal to the catalog default are not explicit; flags outside it are unknown.
			if want := []string{"advertise-address", "allow-privileged", "authorization-mode", "etcd-servers", "service-account-signing-key-file"}; !reflect.DeepEqual(explicit, want) {
				t.Errorf("explicit %v, want %v", explicit, want)
			}
			if want := []string{"service-account-signing-key-file"}; !reflect.DeepEqual(unknown, want) {
				t.Errorf("unknown %v, want %v", unknown, want)
			}
			if inv.Source != SourceFlagz || !strings.HasSuffix(inv.Location, "/flagz") {
				t.Errorf("source %q location %q", inv.Source, inv.Location)
			}
		})
	}
}
