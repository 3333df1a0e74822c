package supervisor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckHealth(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}
		if !ready.Load() {
			http.Error(w, "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	})
	tlsSrv := httptest.NewTLSServer(handler) // a self-signed certificate: must not matter
	defer tlsSrv.Close()
	plain := httptest.NewServer(handler)
	defer plain.Close()
	ctx := context.Background()

	err := CheckHealth(ctx, tlsSrv.URL+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "[-]etcd failed") {
		t.Errorf("CheckHealth of a failing endpoint: %v; want the status and the failing check", err)
	}
	ready.Store(true)
	for _, url := range []string{tlsSrv.URL + "/readyz", plain.URL + "/healthz"} {
		if err := CheckHealth(ctx, url); err != nil {
			t.Errorf("CheckHealth(%s): %v", url, err)
		}
	}
	if testing.Short() {
		return
	}
	begin := time.Now()
	if err := CheckHealth(ctx, plain.URL+"/slow"); err == nil || time.Since(begin) > HealthTimeout+time.Second {
		t.Errorf("CheckHealth of an endpoint slower than %s: %v after %s", HealthTimeout, err, time.Since(begin))
	}
}

func TestCheckHealthRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	if err := CheckHealth(context.Background(), url); err == nil {
		t.Error("CheckHealth of a closed port: no error")
	}
}

func TestWaitHealthy(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := WaitHealthy(ctx, srv.URL, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	never := func(context.Context, string) error { return errors.New("connection refused") }
	err := waitHealthy(ctx, never, "http://x/healthz", 10*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("waitHealthy past the deadline: %v; want the deadline and the last error", err)
	}
}
