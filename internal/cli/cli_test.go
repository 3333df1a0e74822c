package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command tree as user uid and returns stdout, stderr and the exit status.
func runCLI(t *testing.T, uid int, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	g := &globalOptions{In: strings.NewReader(""), Out: &out, Err: &errOut, UID: uid}
	code := execute(newRootCommand(g), args, &errOut)
	return out.String(), errOut.String(), code
}

func TestErrorsAndUsage(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		uid       int
		args      []string
		wantCode  int
		wantErr   string
		wantUsage bool
	}{
		{"unknown command", 0, []string{"frobnicate"}, 1, `error: unknown command "frobnicate"`, true},
		{"unknown flag", 0, []string{"version", "--frob"}, 1, "error: unknown flag: --frob", true},
		{"bad output format", 0, []string{"version", "-o", "xml"}, 1, `error: unknown output format "xml"`, true},
		{"extra argument", 0, []string{"version", "extra"}, 1, "error: unknown command \"extra\"", true},
		{"root dir is a file", 0, []string{"init", "phase", "certs", "all", "--root-dir", file}, 1, "is not a directory", false},
		{"real root as a user", 1000, []string{"init", "phase", "certs", "all"}, 1, "run as root or pass --root-dir", false},
		{"missing root dir", 0, []string{"init", "phase", "certs", "all", "--root-dir", file + "-missing"}, 1, "does not exist", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runCLI(t, tc.uid, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, stderr)
			}
			first, _, _ := strings.Cut(stderr, "\n")
			if !strings.HasPrefix(first, "error: ") || !strings.Contains(first, tc.wantErr) {
				t.Errorf("first stderr line %q, want an error line containing %q", first, tc.wantErr)
			}
			if hasUsage := strings.Contains(stderr, "Usage:"); hasUsage != tc.wantUsage {
				t.Errorf("usage printed = %v, want %v:\n%s", hasUsage, tc.wantUsage, stderr)
			}
		})
	}
}

func TestVersionOutputs(t *testing.T) {
	t.Parallel()
	out, _, code := runCLI(t, 0, "version", "-o", "json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" || v["platform"] == "" {
		t.Errorf("version -o json: exit %d, %q", code, out)
	}
	short, _, _ := runCLI(t, 0, "version", "-o", "short")
	if strings.TrimSpace(short) != v["version"] {
		t.Errorf("version -o short = %q, want %q", short, v["version"])
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, stderr, code := runCLI(t, 0, "completion", shell)
		if code != 0 || !strings.Contains(out, "kubestrap") {
			t.Errorf("completion %s: exit %d %s", shell, code, stderr)
		}
	}
}

// TestDryRunWritesNothing runs the file-writing phases with --dry-run on an empty root.
func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"init", "phase", "certs", "all"},
		{"init", "phase", "kubeconfig", "all"},
		{"init", "phase", "control-plane", "all", "--mode", "local"},
		{"init", "--mode", "local", "--skip-phases", "preflight"},
	} {
		root := t.TempDir()
		out, stderr, code := runCLI(t, 0, append(args, "--root-dir", root, "--dry-run", "--apiserver-advertise-address", "127.0.0.1", "--node-name", "n1")...)
		if code != 0 {
			t.Errorf("%v --dry-run: exit %d\n%s", args, code, stderr)
			continue
		}
		if !strings.Contains(stderr+out, "[dryrun]") {
			t.Errorf("%v --dry-run printed no [dryrun] lines:\n%s", args, stderr)
		}
		if entries, _ := os.ReadDir(root); len(entries) > 0 {
			t.Errorf("%v --dry-run wrote under the root dir: %v", args, entries)
		}
	}
}

// TestInitRejectsBadConfigBeforeWriting checks that configuration mistakes stop init before it
// writes anything, and that every problem is named.
func TestInitRejectsBadConfigBeforeWriting(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ yaml, want string }{
		"unknown field": {"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworkin: {}\n", `unknown field "networkin"`},
		"bad CIDR":      {"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/33\n", "networking.serviceSubnet"},
		"overlap": {"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/12\n  podSubnet: 10.96.0.0/16\n",
			"overlap"},
		"malformed token": {"apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nbootstrapTokens:\n- token: nope\n", "token"},
		"bad IP":          {"apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.0.0.300\n", "advertiseAddress"},
		"unknown kind":    {"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfig\n", "ClusterConfig"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			cfg := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(cfg, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"init"}, {"init", "phase", "certs", "all"}, {"config", "validate"}} {
				_, stderr, code := runCLI(t, 0, append(args, "--root-dir", root, "--config", cfg)...)
				if code == 0 || !strings.Contains(stderr, tc.want) {
					t.Errorf("%v: exit %d, stderr %q, want it to mention %q", args, code, stderr, tc.want)
				}
			}
			if entries, _ := os.ReadDir(root); len(entries) > 0 {
				t.Errorf("a rejected config left files under the root: %v", entries)
			}
		})
	}
}

func TestRootDirFromEnvironment(t *testing.T) {
	root := t.TempDir()
	t.Setenv("KUBESTRAP_ROOT_DIR", root)
	_, stderr, code := runCLI(t, 1000, "init", "phase", "certs", "ca", "--apiserver-advertise-address", "127.0.0.1", "--node-name", "n1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/kubernetes/pki/ca.crt")); err != nil {
		t.Errorf("KUBESTRAP_ROOT_DIR was not used: %v", err)
	}
}
