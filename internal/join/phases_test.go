package join

import (
	"slices"
	"testing"
)

func TestRunnerPhases(t *testing.T) {
	r := NewRunner()
	if got, want := r.Names(), []string{
		"preflight", "discovery", "images",
		"control-plane-prepare", "control-plane-prepare/download-certs", "control-plane-prepare/certs", "control-plane-prepare/kubeconfig", "control-plane-prepare/control-plane",
		"kubelet-start", "tls-bootstrap", "etcd-join", "wait-control-plane", "control-plane-join", "control-plane-join/mark-control-plane", "control-plane-join/csr-approver", "join-addresses",
	}; !slices.Equal(got, want) {
		t.Errorf("phases %v, want %v", got, want)
	}
	// kubeadm's names are accepted by --skip-phases: the alias, the control-plane phases, and
	// check-etcd, which kubestrap has no counterpart for.
	for _, n := range []string{"kubelet-wait-bootstrap", "check-etcd", "control-plane-prepare/certs"} {
		if err := r.ValidateSkip([]string{n}); err != nil {
			t.Errorf("skip %q: %v", n, err)
		}
	}
	if err := r.ValidateSkip([]string{"cleanup"}); err == nil {
		t.Error("skip of reset's phase cleanup accepted by join")
	}
}
