package logx

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestLevels(t *testing.T) {
	t.Parallel()
	for level, want := range []string{
		"progress\n",
		"progress\n[v1] files\n",
		"progress\n[v1] files\n[v2] api\n",
	} {
		var buf bytes.Buffer
		l := New(&buf, level)
		l.Write([]byte("progress\n"))
		Printf(l, 1, "files")
		Printf(l, 2, "api")
		if buf.String() != want {
			t.Errorf("level %d wrote %q, want %q", level, buf.String(), want)
		}
	}
	// A plain writer is level 0: verbose lines go nowhere, and From passes progress through.
	var buf bytes.Buffer
	Printf(&buf, 1, "files")
	From(&buf).Write([]byte("progress\n"))
	if buf.String() != "progress\n" {
		t.Errorf("plain writer got %q", buf.String())
	}
	Printf(nil, 1, "nil writers are fine")
}

func TestWait(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := New(&buf, 1)
	Wait(l, "the %s", "apiserver")(nil)
	Wait(l, "the scheduler")(errors.New("connection refused"))
	want := regexp.MustCompile(`^\[v1\] waiting for the apiserver
\[v1\] done waiting for the apiserver after \d+m?s
\[v1\] waiting for the scheduler
\[v1\] stopped waiting for the scheduler after \d+m?s: connection refused
$`)
	if !want.MatchString(buf.String()) {
		t.Errorf("got:\n%s", buf.String())
	}
	var quiet bytes.Buffer
	Wait(New(&quiet, 0), "anything")(nil)
	if quiet.Len() != 0 {
		t.Errorf("level 0 logged a wait: %q", quiet.String())
	}
}

func TestFileWritten(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := New(&buf, 1)
	FileWritten(l, "/etc/kubernetes/pki/ca.key", 0o600, 227, false)
	FileWritten(l, "/etc/kubernetes/admin.conf", 0o600, 5000, true)
	want := "[v1] wrote /etc/kubernetes/pki/ca.key (mode 0600, 227 bytes)\n" +
		"[v1] would write /etc/kubernetes/admin.conf (mode 0600, 5000 bytes; dry run)\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

// TestClientRequestsAtLevel2 builds a real client-go clientset with a bearer token against an
// httptest server: at -v 2 each request is logged with method, path, status and duration, and
// neither the token nor the Authorization header ever appears.
func TestClientRequestsAtLevel2(t *testing.T) {
	t.Parallel()
	const token = "abcdef.q7w8e9r0t1y2u3i4"
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v1/namespaces/kube-public/configmaps/missing" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
			return
		}
		w.Write([]byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cluster-info","namespace":"kube-public"}}`))
	}))
	defer srv.Close()

	run := func(level int) string {
		var buf bytes.Buffer
		rc := &rest.Config{Host: srv.URL, BearerToken: token, QPS: -1}
		var wrapped bool
		rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { wrapped = true; return rt }
		ConfigureClient(rc, New(&buf, level))
		c, err := kubernetes.NewForConfig(rc)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := c.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		c.CoreV1().ConfigMaps("kube-public").Get(ctx, "missing", metav1.GetOptions{})
		if !wrapped {
			t.Error("ConfigureClient dropped the existing transport wrapper")
		}
		return buf.String()
	}

	got := run(2)
	for _, want := range []string{
		"[v2] GET " + srv.URL + "/api/v1/namespaces/kube-public/configmaps/cluster-info 200 OK in ",
		"[v2] GET " + srv.URL + "/api/v1/namespaces/kube-public/configmaps/missing 404 Not Found in ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("level 2 log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "q7w8e9r0t1y2u3i4") || strings.Contains(got, "Bearer") || strings.Contains(got, "Authorization") {
		t.Errorf("level 2 log shows credentials:\n%s", got)
	}
	// Positive control: the token was really sent, so its absence from the log means something.
	mu.Lock()
	if len(seen) == 0 || seen[0] != "Bearer "+token {
		t.Errorf("server saw Authorization %q", seen)
	}
	mu.Unlock()
	if got := run(1); got != "" {
		t.Errorf("level 1 logged API requests:\n%s", got)
	}
}

func TestRequestErrorLogged(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	rt := &roundTripper{next: failingTransport{}, log: New(&buf, 2)}
	req, _ := http.NewRequest(http.MethodPost, "https://user:secret@127.0.0.1:1/api", nil)
	if _, err := rt.RoundTrip(req); err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(buf.String(), "[v2] POST https://user:xxxxx@127.0.0.1:1/api failed after") || strings.Contains(buf.String(), "secret") {
		t.Errorf("got %q", buf.String())
	}
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("dial refused")
}
