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
