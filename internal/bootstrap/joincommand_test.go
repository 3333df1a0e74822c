package bootstrap

import "testing"

func TestJoinCommand(t *testing.T) {
	got := JoinCommand("10.0.0.1:6443", "abcdef.0123456789abcdef", "sha256:00ff")
	want := "kubestrap join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00ff"
	if got != want {
		t.Errorf("JoinCommand = %q, want %q", got, want)
	}
}

func TestControlPlaneJoinCommand(t *testing.T) {
	got := ControlPlaneJoinCommand("cp.example:6443", "abcdef.0123456789abcdef", "sha256:00ff", "0a1b")
	want := "kubestrap join cp.example:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00ff --control-plane --certificate-key 0a1b"
	if got != want {
		t.Errorf("ControlPlaneJoinCommand = %q, want %q", got, want)
	}
}
