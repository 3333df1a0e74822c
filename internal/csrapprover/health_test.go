package csrapprover

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthServer: /healthz answers while the process serves, /readyz follows the readiness
// function and says why not, and the listener is closed when the context ends.
func TestHealthServer(t *testing.T) {
	var notReady atomic.Pointer[error]
	waiting := errors.New("the caches have not synced yet")
	notReady.Store(&waiting)
	hs, err := ListenHealth("127.0.0.1:0", func() error { return *notReady.Load() })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ctx) }()
	base := "http://" + hs.Addr()

	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || body != "not ready: the caches have not synced yet\n" {
		t.Errorf("/readyz while not ready: %d %q, want 503 with the reason", code, body)
	}
	var ready error
	notReady.Store(&ready)
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz when ready: %d %q, want 200 ok", code, body)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after the context ended: %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if c, err := net.Dial("tcp", hs.Addr()); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Serve returned", hs.Addr())
	}
}

// TestListenHealthRefuses: the endpoint is unauthenticated, so only a loopback IP is accepted;
// a taken port is an error that says how to move it.
func TestListenHealthRefuses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:10261", "192.0.2.1:10261", "localhost:10261", ":10261"} {
		if hs, err := ListenHealth(addr, nil); err == nil || !strings.Contains(err.Error(), "loopback IP") {
			if hs != nil {
				hs.ln.Close()
			}
			t.Errorf("ListenHealth(%q): %v, want a refusal that asks for a loopback IP", addr, err)
		}
	}
	if _, err := ListenHealth("127.0.0.1", nil); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("ListenHealth without a port: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := ListenHealth(taken.Addr().String(), nil); err == nil || !strings.Contains(err.Error(), "csrApprover.healthPort") {
		t.Errorf("ListenHealth on a taken port: %v, want an error naming csrApprover.healthPort", err)
	}
}

// TestReadyFollowsAccess: before its rights exist the controller is not ready and says it cannot
// list the CSRs; it becomes ready within seconds of being allowed (not after the informers'
// growing list backoff), and not ready again when it stops.
func TestReadyFollowsAccess(t *testing.T) {
	fakeClient := fake.NewClientset()
	client := kubeclienttest.Wrap(fakeClient)
	var forbidden atomic.Bool
	forbidden.Store(true)
	fakeClient.PrependReactor("list", "certificatesigningrequests", func(k8stesting.Action) (bool, runtime.Object, error) {
		if forbidden.Load() {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}, "", errors.New("user kubestrap:csr-approver has no rights yet"))
		}
		return false, nil, nil
	})
	c := New(client, record.NewFakeRecorder(10), &syncBuffer{})
	if err := c.Ready(); err == nil {
		t.Fatal("ready before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, "the refusal to show in Ready", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "cannot list kubernetes.io/kubelet-serving CertificateSigningRequests") && strings.Contains(err.Error(), "no rights yet")
	})
	// Long enough for an informer's list backoff to have grown past the 5 s allowed below.
	time.Sleep(3 * time.Second)
	if c.Ready() == nil {
		t.Fatal("ready while listing is forbidden")
	}
	forbidden.Store(false)
	allowed := time.Now()
	waitFor(t, "Ready after the rights exist", func() bool { return c.Ready() == nil })
	if took := time.Since(allowed); took > 5*time.Second {
		t.Errorf("ready %s after listing was allowed, want within a few seconds", took)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(); err == nil || err.Error() != "stopping" {
		t.Errorf("Ready after Run returned: %v, want stopping", err)
	}
}
