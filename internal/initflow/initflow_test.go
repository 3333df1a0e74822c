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
	want := "preflight images certs kubeconfig etcd control-plane kubelet-start wait-control-plane upload-config upload-certs mark-control-plane bootstrap-token csr-approver addon show-join-command"
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
	if err := runShowJoinCommand(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	out := d.out.(*bytes.Buffer).String()
	if want := "\nkubestrap join 127.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "--control-plane") {
		t.Errorf("without controlPlaneEndpoint no control-plane join command is printed:\n%s", out)
	}
}

// TestControlPlaneJoinCommand: with controlPlaneEndpoint, init prints the control-plane join
// command with the certificate key when this run uploaded the certificates (kubeadm's output),
// a placeholder when the key's print was skipped, and how to upload them otherwise; the key
// appears nowhere else, and the upload-certs phase prints it on a line of its own.
func TestControlPlaneJoinCommand(t *testing.T) {
	t.Parallel()
	const key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	const token = "abcdef.0123456789abcdef"
	for _, tc := range []struct {
		name       string
		endpoint   string
		upload     bool
		skipPrint  bool
		wantCP     string // the control-plane line's suffix, "" for none
		wantKeyOut int    // lines of stdout that hold the key
	}{
		{name: "uploaded", endpoint: "cp.example:6443", upload: true, wantCP: "--control-plane --certificate-key " + key, wantKeyOut: 2},
		{name: "key print skipped", endpoint: "cp.example:6443", upload: true, skipPrint: true, wantCP: "--control-plane --certificate-key <certificate key>"},
		{name: "not uploaded", endpoint: "cp.example:6443", wantCP: "--control-plane --certificate-key <certificate key>"},
		{name: "no endpoint", upload: true, wantKeyOut: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Init.BootstrapTokens = []config.BootstrapToken{{Token: token}}
			cfg.Cluster.ControlPlaneEndpoint = tc.endpoint
			var out, log bytes.Buffer
			d, err := New(cfg, paths.MustUnder(t.TempDir()), config.ModeLocal, Options{DryRun: true, Out: &out, Log: &log,
				UploadCerts: tc.upload, CertificateKey: key, SkipCertificateKeyPrint: tc.skipPrint})
			if err != nil {
				t.Fatal(err)
			}
			if err := runUploadCerts(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			if tc.upload && !strings.Contains(log.String(), "Would create Secret kube-system/kubeadm-certs") {
				t.Errorf("dry run does not say what it would upload:\n%s", log.String())
			}
			if err := runShowJoinCommand(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			var cpLine, keyLines int
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, key) {
					keyLines++
					if l != key && !strings.HasPrefix(l, "kubestrap join ") {
						t.Errorf("the key is printed outside its own line and the join command: %q", l)
					}
				}
				if strings.Contains(l, "--control-plane") {
					cpLine++
					want := "kubestrap join " + tc.endpoint + " --token " + token + " --discovery-token-ca-cert-hash sha256:"
					if !strings.HasPrefix(l, want) || !strings.HasSuffix(l, tc.wantCP) {
						t.Errorf("control-plane join line %q, want %q...%q", l, want, tc.wantCP)
					}
				}
			}
			if (cpLine == 1) != (tc.wantCP != "") || cpLine > 1 {
				t.Errorf("%d control-plane join lines:\n%s", cpLine, out.String())
			}
			if keyLines != tc.wantKeyOut {
				t.Errorf("the key is on %d lines of stdout, want %d:\n%s", keyLines, tc.wantKeyOut, out.String())
			}
			if strings.Contains(log.String(), key) {
				t.Errorf("the key is in the progress log:\n%s", log.String())
			}
		})
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
