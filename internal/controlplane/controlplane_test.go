package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestWaitHealthy(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	check := func(ctx context.Context, url string) error {
		if url == "https://slow" && calls.Add(1) < 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	var log bytes.Buffer
	targets := []Target{{Name: "etcd", URL: "http://fast"}, {Name: "kube-apiserver", URL: "https://slow"}}
	if err := Wait(context.Background(), targets, 5*time.Second, time.Millisecond, check, &log); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Waiting for etcd at http://fast", "kube-apiserver is healthy after"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, log.String())
		}
	}
}

// TestWaitTimeout checks that a component that never gets healthy is named, with its last error
// and the last 20 lines of its log.
func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "kube-apiserver.log")
	var lines []string
	for i := 1; i <= 30; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	if err := os.WriteFile(logFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(ctx context.Context, url string) error {
		if strings.Contains(url, "6443") {
			return errors.New("connection refused")
		}
		return nil
	}
	targets := []Target{{Name: "etcd", URL: "http://127.0.0.1:2381/readyz"}, {Name: "kube-apiserver", URL: "https://127.0.0.1:6443/readyz", LogFile: logFile}}
	err := Wait(context.Background(), targets, 50*time.Millisecond, 5*time.Millisecond, check, &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error for a component that never became healthy")
	}
	msg := err.Error()
	for _, want := range []string{"kube-apiserver is not healthy", "connection refused", "line 11", "line 30"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line 10\n") || strings.Contains(msg, "etcd is not healthy") {
		t.Errorf("error shows more than the last 20 lines or blames a healthy component:\n%s", msg)
	}
}

func TestWaitControllers(t *testing.T) {
	t.Parallel()
	fakeC := fake.NewSimpleClientset()
	c := kubeclienttest.Wrap(fakeC)
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.CoreV1().ServiceAccounts("default").Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	}()
	var log bytes.Buffer
	if err := WaitControllers(context.Background(), c, 5*time.Second, 5*time.Millisecond, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "controllers are running") {
		t.Errorf("no progress line: %q", log.String())
	}
	err := WaitControllers(context.Background(), kubeclienttest.Wrap(fake.NewSimpleClientset()), 30*time.Millisecond, 5*time.Millisecond, &log)
	if err == nil || !strings.Contains(err.Error(), "did not start its controllers") {
		t.Errorf("err = %v", err)
	}
}
