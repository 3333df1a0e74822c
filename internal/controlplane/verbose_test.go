package controlplane

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"github.com/kubestrap/kubestrap/internal/logx"
)

// TestWaitsAtLevel1: at -v 1 each wait says what it waits for, and when it ends, how long it
// took and, on failure, why; at -v 0 neither.
func TestWaitsAtLevel1(t *testing.T) {
	t.Parallel()
	healthy := func(context.Context, string) error { return nil }
	refused := func(context.Context, string) error { return errors.New("connection refused") }
	targets := []Target{{Name: "etcd", URL: "http://a"}, {Name: "kube-apiserver", URL: "https://b"}}

	var v1 bytes.Buffer
	if err := Wait(context.Background(), targets, 5*time.Second, time.Millisecond, healthy, logx.New(&v1, 1)); err != nil {
		t.Fatal(err)
	}
	Wait(context.Background(), targets[:1], 20*time.Millisecond, 5*time.Millisecond, refused, logx.New(&v1, 1))
	WaitControllers(context.Background(), kubeclienttest.Wrap(fake.NewClientset()), 20*time.Millisecond, 5*time.Millisecond, logx.New(&v1, 1))
	for _, re := range []string{
		`(?m)^\[v1\] waiting for health of etcd, kube-apiserver \(up to 5s\)$`,
		`(?m)^\[v1\] done waiting for health of etcd, kube-apiserver \(up to 5s\) after \d+m?s$`,
		`(?m)^\[v1\] stopped waiting for health of etcd \(up to 20ms\) after \d+m?s: 1 of 1 components unhealthy$`,
		`(?m)^\[v1\] waiting for the controller-manager's controllers: ServiceAccount default/default \(up to 20ms\)$`,
		`(?m)^\[v1\] stopped waiting for the controller-manager's controllers: .* after \d+m?s: serviceaccounts "default" not found$`,
	} {
		if !regexp.MustCompile(re).MatchString(v1.String()) {
			t.Errorf("-v 1 output lacks %s:\n%s", re, v1.String())
		}
	}

	var v0 bytes.Buffer
	Wait(context.Background(), targets, 5*time.Second, time.Millisecond, healthy, logx.New(&v0, 0))
	if strings.Contains(v0.String(), "[v1]") || !strings.Contains(v0.String(), "is healthy after") {
		t.Errorf("-v 0 output:\n%s", v0.String())
	}
}
