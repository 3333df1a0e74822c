package initflow

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// TestWaitTargetsIncludeTheApprover: wait-control-plane waits for all five components, the CSR
// approver at its liveness endpoint (its readiness needs RBAC that comes later), the others at
// their readiness; with csrApprover.disabled the approver is not waited for.
func TestWaitTargetsIncludeTheApprover(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Kubestrap.CSRApprover.HealthPort = 20261
	d, err := New(cfg, paths.MustUnder(t.TempDir()), config.ModeLocal, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range waitTargets(d) {
		got[tg.Name] = tg.URL
		if tg.LogFile == "" && tg.LogHint == "" {
			t.Errorf("%s: no log file or hint for a failed wait", tg.Name)
		}
	}
	want := map[string]string{
		"etcd":                    "http://127.0.0.1:2381/readyz",
		"kube-apiserver":          "https://127.0.0.1:6443/readyz",
		"kube-controller-manager": "https://127.0.0.1:10257/healthz",
		"kube-scheduler":          "https://127.0.0.1:10259/readyz",
		"kubestrap-csr-approver":  "http://127.0.0.1:20261/healthz",
	}
	for name, url := range want {
		if got[name] != url {
			t.Errorf("wait target %s = %q, want %q", name, got[name], url)
		}
	}
	if len(got) != len(want) {
		t.Errorf("wait targets %v, want %v", got, want)
	}

	cfg.Kubestrap.CSRApprover.Disabled = true
	for _, tg := range waitTargets(d) {
		if tg.Name == "kubestrap-csr-approver" {
			t.Errorf("the disabled approver is waited for at %s", tg.URL)
		}
	}
}

// TestWaitCSRApproverReady: the csr-approver phase waits for the approver's /readyz; when it never
// answers, the error says what that means, the last answer, and where the approver's output is.
func TestWaitCSRApproverReady(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Init.Timeouts = &config.Timeouts{ControlPlaneComponentHealthCheck: &metav1.Duration{Duration: 300 * time.Millisecond}}
	root := t.TempDir()
	var log bytes.Buffer
	d, err := New(cfg, paths.MustUnder(root), config.ModeLocal, Options{Log: &log, Out: &log})
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	notReady := func(_ context.Context, url string) error {
		asked = append(asked, url)
		return errors.New("503 Service Unavailable: not ready: cannot list kubernetes.io/kubelet-serving CertificateSigningRequests: forbidden")
	}
	err = waitCSRApproverReady(context.Background(), d, notReady)
	if err == nil {
		t.Fatal("no error when the approver never became ready")
	}
	for _, want := range []string{"kubestrap-csr-approver did not become ready within 300ms", "serving certificates would not be approved", "forbidden", root + "/var/log/kubestrap/kubestrap-csr-approver.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if len(asked) == 0 || asked[0] != "http://127.0.0.1:10261/readyz" {
		t.Errorf("polled %q, want http://127.0.0.1:10261/readyz", asked)
	}

	calls := 0
	readySoon := func(context.Context, string) error {
		if calls++; calls < 2 {
			return errors.New("not yet")
		}
		return nil
	}
	cfg.Init.Timeouts = nil
	if err := waitCSRApproverReady(context.Background(), d, readySoon); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "[csr-approver] kubestrap-csr-approver is ready after") {
		t.Errorf("log:\n%s", log.String())
	}
}
