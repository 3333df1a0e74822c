package reset

import (
	"slices"
	"testing"
)

func TestRunnerPhases(t *testing.T) {
	r := NewRunner()
	if got, want := r.Names(), []string{"preflight", "remove-etcd-member", "stop", "cleanup"}; !slices.Equal(got, want) {
		t.Errorf("phases %v, want %v", got, want)
	}
	for _, n := range []string{"pre-flight", "cleanup-node", "cleanupnode"} {
		if err := r.ValidateSkip([]string{n}); err != nil {
			t.Errorf("kubeadm's name %q: %v", n, err)
		}
	}
	if err := r.ValidateSkip([]string{"tls-bootstrap"}); err == nil {
		t.Error("skip of join's phase tls-bootstrap accepted by reset")
	}
}
