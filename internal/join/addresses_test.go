package join

import (
	"context"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/csrapprover"
)

// TestJoinRecordsAddresses: join leaves the node's addresses on its Lease, as the node: the
// default address, or kubeletExtraArgs' node-ip when set; on a Lease that exists (a node joining
// again) the annotation is updated and the rest of the Lease kept. A node-ip that is not an
// address fails the join in preflight, before anything is written.
func TestJoinRecordsAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		nodeIP  string
		existed bool
		want    string
		wantErr string
	}{
		{name: "default address", want: "10.0.0.5"},
		{name: "node-ip, dual stack", nodeIP: "192.168.1.7,fd00::7", want: "192.168.1.7,fd00::7"},
		{name: "node-ip unspecified means the default", nodeIP: "0.0.0.0", want: "10.0.0.5"},
		{name: "lease exists", existed: true, want: "10.0.0.5"},
		{name: "bad node-ip", nodeIP: "worker-1.example.com", wantErr: `kubeletExtraArgs node-ip="worker-1.example.com": "worker-1.example.com" is not an IP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCluster(t)
			holder := "someone"
			if tc.existed {
				if _, err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(context.Background(), &coordinationv1.Lease{
					ObjectMeta: metav1.ObjectMeta{Name: "worker-1", Namespace: corev1.NamespaceNodeLease, Annotations: map[string]string{csrapprover.JoinAddressesAnnotation: "10.9.9.9", "other": "kept"}},
					Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder},
				}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			root := t.TempDir()
			j := newTestJoin(t, root, c, func(o *Options) {
				if tc.nodeIP != "" {
					o.Config.Join.NodeRegistration.KubeletExtraArgs = []config.Arg{{Name: "node-ip", Value: tc.nodeIP}}
				}
			})
			err := runAll(context.Background(), j)
			if tc.wantErr != "" {
				if len(c.csrs) != 0 {
					t.Errorf("a CSR was submitted before the bad node-ip was noticed")
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if got := tree(t, root); len(got) != 0 {
					t.Errorf("left behind: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l, err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), "worker-1", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Annotations[csrapprover.JoinAddressesAnnotation]; got != tc.want {
				t.Errorf("annotation %q, want %q", got, tc.want)
			}
			wantHolder := "worker-1"
			if tc.existed {
				wantHolder = holder
				if l.Annotations["other"] != "kept" {
					t.Errorf("annotations %v", l.Annotations)
				}
			}
			if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != wantHolder {
				t.Errorf("holder %v, want %s", l.Spec.HolderIdentity, wantHolder)
			}
		})
	}
}
