package cli

import (
	"slices"
	"testing"
)

func TestArgs(t *testing.T) {
	for _, tc := range []struct{ argv, want []string }{
		{[]string{"/usr/bin/kubestrap", "init", "--dry-run"}, []string{"init", "--dry-run"}},
		{[]string{"/var/lib/kubestrap/bin/kubestrap-csr-approver", "--kubeconfig=/etc/kubernetes/csr-approver.conf"}, []string{"csr-approver", "--kubeconfig=/etc/kubernetes/csr-approver.conf"}},
		{[]string{"kubestrap-csr-approver"}, []string{"csr-approver"}},
	} {
		if got := Args(tc.argv); !slices.Equal(got, tc.want) {
			t.Errorf("Args(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}
