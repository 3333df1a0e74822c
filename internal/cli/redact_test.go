package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandsNeverEchoATokenSecret runs every command that takes a token with malformed ones and
// checks that neither stdout nor stderr carries the secret: a malformed token is usually a real
// one mistyped or mangled by a shell, and error output ends up in CI logs and bug reports.
func TestCommandsNeverEchoATokenSecret(t *testing.T) {
	t.Parallel()
	const hash = "sha256:0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
	bad := []struct{ token, secret string }{
		{"abcdef.q7w8e9r0t1y2u3i4x", "q7w8e9r0t1y2u3i4"},
		{"abcdefq7w8e9r0t1y2u3i4", "q7w8e9r0t1y2u3i4"},
		{"ABCDEF.Q7W8E9R0T1Y2U3I4", "Q7W8E9R0T1Y2U3I4"},
		{"q7w8e9r0t1y2u3i4.abcdef", "q7w8e9r0t1y2u3i4"},
	}
	for _, bt := range bad {
		root := t.TempDir()
		cfg := filepath.Join(t.TempDir(), "init.yaml")
		if err := os.WriteFile(cfg, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nbootstrapTokens:\n- token: "+bt.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"token", "create", bt.token, "--dry-run"},
			{"token", "create", bt.token, "--print-join-command"},
			{"token", "delete", bt.token, "--dry-run"},
			{"join", "127.0.0.1:6443", "--token", bt.token, "--discovery-token-ca-cert-hash", hash},
			{"join", "127.0.0.1:6443", "--discovery-token", "abcdef.0123456789abcdef", "--tls-bootstrap-token", bt.token, "--discovery-token-ca-cert-hash", hash},
			{"join", "phase", "discovery", "127.0.0.1:6443", "--token", bt.token, "--discovery-token-unsafe-skip-ca-verification"},
			{"init", "--token", bt.token, "--dry-run", "--mode", "local"},
			{"init", "--config", cfg, "--dry-run", "--mode", "local"},
			{"config", "validate", "--config", cfg},
		} {
			out, stderr, code := runCLI(t, 0, append(args, "--root-dir", root)...)
			if code == 0 {
				t.Errorf("%v: accepted a malformed token", args)
			}
			if strings.Contains(out+stderr, bt.secret) {
				t.Errorf("%v: the output shows the token secret %q:\nstdout: %s\nstderr: %s", args, bt.secret, out, stderr)
			}
			if !strings.Contains(stderr, "redacted") {
				t.Errorf("%v: stderr does not point at the (redacted) token:\n%s", args, stderr)
			}
		}
		if entries, _ := os.ReadDir(root); len(entries) > 0 {
			t.Errorf("a malformed token left files under the root: %v", entries)
		}
	}
}

// TestCertificateKeyShownOnlyWhereKubeadmShowsIt: the certificate key decrypts the cluster's CA
// keys. A dry-run init with --upload-certs prints it on stdout on a line of its own and in the
// control-plane join command, nowhere else (not on stderr, not at -v 2); with
// --skip-certificate-key-print nowhere at all; and a malformed key is never echoed.
func TestCertificateKeyShownOnlyWhereKubeadmShowsIt(t *testing.T) {
	t.Parallel()
	const key = "f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d"
	base := []string{"init", "--dry-run", "--mode", "local", "--upload-certs", "--certificate-key", key,
		"--control-plane-endpoint", "cp.example:6443", "--apiserver-advertise-address", "127.0.0.1", "--node-name", "n1", "-v", "2"}
	out, stderr, code := runCLI(t, 0, append(base, "--root-dir", t.TempDir())...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, key) {
		t.Errorf("the key is on stderr:\n%s", stderr)
	}
	var own, join int
	for _, l := range strings.Split(out, "\n") {
		switch {
		case !strings.Contains(l, key):
		case l == key:
			own++
		case strings.HasPrefix(strings.TrimSpace(l), "kubestrap join cp.example:6443 ") && strings.HasSuffix(l, "--control-plane --certificate-key "+key):
			join++
		default:
			t.Errorf("the key is printed on %q", l)
		}
	}
	if own != 1 || join != 1 {
		t.Errorf("key on its own line %d times, in the control-plane join command %d times; want 1 and 1:\n%s", own, join, out)
	}

	out, stderr, code = runCLI(t, 0, append(base, "--skip-certificate-key-print", "--root-dir", t.TempDir())...)
	if code != 0 || strings.Contains(out+stderr, key) {
		t.Errorf("--skip-certificate-key-print: exit %d, the key is printed:\nstdout: %s\nstderr: %s", code, out, stderr)
	}

	const bad = "f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00dxyzw"
	for _, args := range [][]string{
		{"init", "--dry-run", "--mode", "local", "--upload-certs", "--certificate-key", bad},
		{"init", "phase", "upload-certs", "--upload-certs", "--certificate-key", bad},
	} {
		root := t.TempDir()
		out, stderr, code := runCLI(t, 0, append(args, "--root-dir", root)...)
		if code == 0 || strings.Contains(out+stderr, bad) || strings.Contains(out+stderr, bad[:40]) {
			t.Errorf("%v: exit %d; a malformed key must be refused without being echoed:\nstdout: %s\nstderr: %s", args, code, out, stderr)
		}
		if !strings.Contains(stderr, "redacted") {
			t.Errorf("%v: stderr does not point at the (redacted) key:\n%s", args, stderr)
		}
		if entries, _ := os.ReadDir(root); len(entries) > 0 {
			t.Errorf("%v: a malformed key left files under the root: %v", args, entries)
		}
	}
}
