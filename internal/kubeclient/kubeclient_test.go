package kubeclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

func TestConfigureAppliesOptionsToACopy(t *testing.T) {
	orig := &rest.Config{Host: "https://192.0.2.1:6443", UserAgent: "orig", Timeout: 7 * time.Second}
	for _, tc := range []struct {
		name    string
		o       Options
		timeout time.Duration
		ua      string
	}{
		{"defaults", Options{}, DefaultTimeout, "orig"},
		{"explicit", Options{Timeout: time.Minute, UserAgent: "kubestrap-join"}, time.Minute, "kubestrap-join"},
		{"no timeout", Options{Timeout: -1}, 0, "orig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := Configure(orig, tc.o)
			if rc.Timeout != tc.timeout || rc.UserAgent != tc.ua {
				t.Errorf("timeout %s, user agent %q; want %s, %q", rc.Timeout, rc.UserAgent, tc.timeout, tc.ua)
			}
			if orig.Timeout != 7*time.Second || orig.UserAgent != "orig" {
				t.Errorf("the caller's config was changed: %+v", orig)
			}
		})
	}
}

func TestFromKubeconfigFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := FromKubeconfigFile(filepath.Join(dir, "missing.conf"), Options{}); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing kubeconfig: err %v, want one naming the file", err)
	}
	path := filepath.Join(dir, "admin.conf")
	kc := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://192.0.2.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FromKubeconfigFile(path, Options{}); err != nil {
		t.Errorf("valid kubeconfig: %v", err)
	}
}

var transient = apierrors.NewServiceUnavailable("starting")

func TestRetryUntilSuccess(t *testing.T) {
	calls := 0
	err := Retry(context.Background(), time.Minute, PermanentAPIError, func(context.Context) error {
		calls++
		if calls < 3 {
			return transient
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("err %v after %d calls; want success on the 3rd", err, calls)
	}
}

func TestRetryStopsOnPermanentError(t *testing.T) {
	denied := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "x", errors.New("no"))
	calls := 0
	err := Retry(context.Background(), time.Minute, PermanentAPIError, func(context.Context) error {
		calls++
		return denied
	})
	if !apierrors.IsForbidden(err) || calls != 1 {
		t.Errorf("err %v after %d calls; want Forbidden after one", err, calls)
	}
	// Without a classifier Forbidden is retried like anything else (RBAC caches filling).
	calls = 0
	err = Retry(context.Background(), time.Minute, nil, func(context.Context) error {
		calls++
		if calls == 1 {
			return denied
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Errorf("nil classifier: err %v after %d calls; want success on the 2nd", err, calls)
	}
}

func TestRetryTimeoutReturnsLastError(t *testing.T) {
	err := Retry(context.Background(), 3*RetryInterval, PermanentAPIError, func(context.Context) error { return transient })
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("err %v; want the last API error, not a bare timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err = Retry(ctx, time.Minute, nil, func(context.Context) error { calls++; return transient })
	if calls != 1 || !apierrors.IsServiceUnavailable(err) {
		t.Errorf("cancelled context: err %v after %d calls; want one attempt and its error", err, calls)
	}
}

// client-go's default limit (5/s after a burst of 10) held init's API phases for about a second
// each; an unset limit becomes kubectl's, and a caller's own choice is kept.
func TestConfigureRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		qps        float32
		burst      int
		wantQPS    float32
		wantBurst  int
		wantLimits bool
	}{
		{"unset", 0, 0, ClientQPS, ClientBurst, true},
		{"caller's own", 20, 40, 20, 40, true},
		{"none", -1, 0, -1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := Configure(&rest.Config{Host: "https://192.0.2.1:6443", QPS: tc.qps, Burst: tc.burst}, Options{})
			if rc.QPS != tc.wantQPS || rc.Burst != tc.wantBurst {
				t.Fatalf("QPS %v, burst %d; want %v, %d", rc.QPS, rc.Burst, tc.wantQPS, tc.wantBurst)
			}
			cs, err := kubernetes.NewForConfig(rc)
			if err != nil {
				t.Fatal(err)
			}
			lim := cs.CoreV1().RESTClient().GetRateLimiter()
			if (lim != nil) != tc.wantLimits {
				t.Fatalf("rate limiter %v; want one: %v", lim, tc.wantLimits)
			}
			if lim != nil && lim.QPS() != tc.wantQPS {
				t.Errorf("the client's limiter allows %v requests/s; want %v", lim.QPS(), tc.wantQPS)
			}
		})
	}
}
