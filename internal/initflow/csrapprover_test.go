package initflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/csrapprover"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
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

// A cluster whose init ran without the approver has no record: a joining node with a kubelet
// leaves it so, says why, and does not wait for an approver.
func TestJoinedControlPlaneWithoutTheClustersApprover(t *testing.T) {
	t.Parallel()
	cfg := configtest.Init("10.0.0.12", "cp-2")
	p := paths.MustUnder(t.TempDir())
	writeKubeletConfig(t, p)
	fakeC := fake.NewClientset()
	var log bytes.Buffer
	cp, err := NewControlPlane(cfg, p, config.ModeLocal, Options{Out: &log, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	cp.d.client = kubeclienttest.Wrap(fakeC)
	if err := cp.CSRApprover(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "[csr-approver] Skipped: ConfigMap kube-system/kubestrap-node-addresses does not exist") || strings.Contains(log.String(), "Waiting for") {
		t.Errorf("log:\n%s", log.String())
	}
	if cms, _ := fakeC.CoreV1().ConfigMaps(metav1.NamespaceSystem).List(context.Background(), metav1.ListOptions{}); len(cms.Items) != 0 {
		t.Errorf("the join created %v", cms.Items)
	}
}

// TestJoinedControlPlaneRecordsItsAddresses: a joining control-plane node whose run mode runs a
// kubelet (its kubelet configuration is there) records its addresses for the CSR approver in the
// ConfigMap, beside those already recorded, as init records the first node's; then it waits for
// its own approver. Without a kubelet (local mode) nothing is recorded for it.
func TestJoinedControlPlaneRecordsItsAddresses(t *testing.T) {
	t.Parallel()
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ready.Close)
	port, err := strconv.Atoi(ready.URL[strings.LastIndex(ready.URL, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	for _, kubelet := range []bool{true, false} {
		t.Run(fmt.Sprintf("kubelet=%v", kubelet), func(t *testing.T) {
			t.Parallel()
			cfg := configtest.Init("10.0.0.12", "cp-2")
			cfg.Kubestrap.CSRApprover.HealthPort = int32(port)
			p := paths.MustUnder(t.TempDir())
			if kubelet {
				writeKubeletConfig(t, p)
			}
			fakeC := fake.NewClientset(&corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: csrapprover.RecordName, Namespace: metav1.NamespaceSystem},
				Data:       map[string]string{"cp-1": "10.0.0.11"},
			})
			var log bytes.Buffer
			cp, err := NewControlPlane(cfg, p, config.ModeLocal, Options{Out: &log, Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			cp.d.client = kubeclienttest.Wrap(fakeC)
			if err := cp.CSRApprover(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			cm, err := fakeC.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(context.Background(), csrapprover.RecordName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"cp-1": "10.0.0.11"}
			if kubelet {
				want["cp-2"] = "10.0.0.12"
			}
			if !maps.Equal(cm.Data, want) {
				t.Errorf("recorded addresses %v, want %v\n%s", cm.Data, want, log.String())
			}
			if !strings.Contains(log.String(), "kubestrap-csr-approver is ready after") {
				t.Errorf("no wait for this node's approver:\n%s", log.String())
			}
		})
	}
}

// writeKubeletConfig puts a kubelet configuration under p: the sign that the node's run mode runs
// a kubelet (controlPlaneNodeAddresses).
func writeKubeletConfig(t *testing.T, p paths.Paths) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p.KubeletConfig()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.KubeletConfig(), []byte("kind: KubeletConfiguration\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
