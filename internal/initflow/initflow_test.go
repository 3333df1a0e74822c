package initflow

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// testConfig is the shared defaulted configuration (configtest) for this package's node.
func testConfig(t *testing.T) *config.Config { return configtest.Init("127.0.0.1", "n1") }

// TestPhaseNames pins the phase names to kubeadm's where they mean the same, since scripts pass
// them to --skip-phases and "init phase".
func TestPhaseNames(t *testing.T) {
	t.Parallel()
	var top []string
	for _, name := range NewRunner().Names() {
		if !strings.Contains(name, "/") {
			top = append(top, name)
		}
	}
	want := "preflight certs kubeconfig etcd control-plane kubelet-start wait-control-plane upload-config mark-control-plane bootstrap-token csr-approver addon show-join-command"
	if got := strings.Join(top, " "); got != want {
		t.Errorf("phases %q, want %q", got, want)
	}
	names := strings.Join(NewRunner().Names(), " ")
	for _, sub := range []string{"certs/apiserver-etcd-client", "certs/sa", "kubeconfig/super-admin", "etcd/local", "control-plane/controller-manager", "control-plane/csr-approver", "upload-config/kubelet", "addon/coredns", "addon/kube-proxy"} {
		if !strings.Contains(names, sub) {
			t.Errorf("no phase %s in %s", sub, names)
		}
	}
}

func TestNewRejectsUnknownMode(t *testing.T) {
	t.Parallel()
	_, err := New(testConfig(t), paths.MustUnder(t.TempDir()), "kubernetes-the-hard-way", Options{Out: &bytes.Buffer{}, Log: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "unknown run mode") {
		t.Errorf("err = %v", err)
	}
}

func TestConfigTokensExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cfg := testConfig(t)
	fixed := metav1.NewTime(now.Add(time.Hour))
	cfg.Init.BootstrapTokens = []config.BootstrapToken{
		{Token: "abcdef.0123456789abcdef", TTL: &metav1.Duration{Duration: 24 * time.Hour}, Usages: []string{"signing"}},
		{Token: "ghijkl.0123456789abcdef", Expires: &fixed},
		{Token: "mnopqr.0123456789abcdef", TTL: &metav1.Duration{}},
	}
	tokens, err := configTokens(cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	if !tokens[0].Expires.Equal(now.Add(24*time.Hour)) || !tokens[1].Expires.Equal(fixed.Time) || !tokens[2].Expires.IsZero() {
		t.Errorf("expiries %v %v %v", tokens[0].Expires, tokens[1].Expires, tokens[2].Expires)
	}
	cfg.Init.BootstrapTokens = []config.BootstrapToken{{Token: "nope"}}
	if _, err := configTokens(cfg, now); err == nil {
		t.Errorf("a malformed token was accepted")
	}
}

func TestJoinCommandInDryRun(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Init.BootstrapTokens = []config.BootstrapToken{{Token: "abcdef.0123456789abcdef"}}
	d, err := New(cfg, paths.MustUnder(t.TempDir()), config.ModeLocal, Options{DryRun: true, Out: &bytes.Buffer{}, Log: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	line, err := joinCommand(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kubestrap join 127.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:"; !strings.HasPrefix(line, want) {
		t.Errorf("join command %q, want prefix %q", line, want)
	}
}

// TestCheckStarted: a whole init whose static-pod or systemd files nobody can start (here: a
// root dir, which systemd does not read) must fail with an error that says so, unless the caller
// skipped wait-control-plane or it was a dry run; local mode always starts what it wrote.
func TestCheckStarted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode    string
		dryRun  bool
		skip    []string
		wantErr bool
	}{
		{mode: config.ModeSystemd, wantErr: true},
		{mode: config.ModeStaticPod, wantErr: true},
		{mode: config.ModeSystemd, skip: []string{"upload-config"}, wantErr: true},
		{mode: config.ModeSystemd, skip: []string{"wait-control-plane"}},
		{mode: config.ModeStaticPod, dryRun: true},
		{mode: config.ModeLocal},
	} {
		root := t.TempDir()
		d, err := New(testConfig(t), paths.MustUnder(root), tc.mode, Options{DryRun: tc.dryRun, Out: &bytes.Buffer{}, Log: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		d.skip = tc.skip
		err = CheckStarted(d)
		if !tc.wantErr {
			if err != nil {
				t.Errorf("%s, dry run %v, skip %v: %v", tc.mode, tc.dryRun, tc.skip, err)
			}
			continue
		}
		if !errors.Is(err, ErrNotStarted) {
			t.Fatalf("%s, skip %v: err = %v, want ErrNotStarted", tc.mode, tc.skip, err)
		}
		for _, want := range []string{"the control plane was not started", tc.mode + " mode", "systemd does not read units under the root dir", "'kubestrap init phase wait-control-plane --mode " + tc.mode + " --root-dir " + root + "'"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error lacks %q: %v", tc.mode, want, err)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: the error is printed as init's last line and must be one line: %q", tc.mode, err)
		}
	}
}

// TestDecideResume: a running supervisor of the root means its components are ours, healthy or
// still starting; only a healthy control plane of a finished init leaves nothing to do.
func TestDecideResume(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		running, healthy, finished bool
		want                       resumeAction
	}{
		{false, false, false, runFresh},
		{true, false, false, runResume}, // interrupted while the components were starting
		{true, true, false, runResume},  // interrupted after they were healthy
		{true, true, true, runNothing},
	} {
		if got := decideResume(tc.running, tc.healthy, tc.finished); got != tc.want {
			t.Errorf("running %v, healthy %v, finished %v: %v, want %v", tc.running, tc.healthy, tc.finished, got, tc.want)
		}
	}
}
