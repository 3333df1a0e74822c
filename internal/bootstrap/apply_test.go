package bootstrap

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
)

// A re-run of init applies its objects again: what another field manager added in between (the
// bootstrapsigner's signature in cluster-info, a user's label and extra subject) must survive,
// and what kubestrap sets must come back if someone changed it. The old create-then-update
// helpers replaced the whole subjects list and kept only keys they merged by hand.
func TestReapplyKeepsOtherManagersFields(t *testing.T) {
	ctx := context.Background()
	fakeC := fake.NewClientset()
	c := kubeclienttest.Wrap(fakeC)
	if err := EnsureClusterInfo(ctx, c, []byte("kubeconfig v1")); err != nil {
		t.Fatal(err)
	}
	if err := UploadClusterConfig(ctx, c, []byte("cluster v1")); err != nil {
		t.Fatal(err)
	}

	cm, err := c.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[bootstrapapi.JWSSignatureKeyPrefix+"abcdef"] = "signature"
	if _, err := c.CoreV1().ConfigMaps(metav1.NamespacePublic).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kube-controller-manager"}); err != nil {
		t.Fatal(err)
	}
	rb, err := c.RbacV1().RoleBindings(metav1.NamespaceSystem).Get(ctx, "kubeadm:nodes-kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rb.Labels = map[string]string{"team": "platform"}
	if _, err := c.RbacV1().RoleBindings(metav1.NamespaceSystem).Update(ctx, rb, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}

	if err := EnsureClusterInfo(ctx, c, []byte("kubeconfig v2")); err != nil {
		t.Fatal(err)
	}
	if err := UploadClusterConfig(ctx, c, []byte("cluster v2")); err != nil {
		t.Fatal(err)
	}

	cm, err = c.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Data[bootstrapapi.KubeConfigKey]; got != "kubeconfig v2" {
		t.Errorf("cluster-info kubeconfig = %q, want the re-applied value", got)
	}
	if got := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+"abcdef"]; got != "signature" {
		t.Errorf("the bootstrapsigner's key was lost on re-apply: %v", cm.Data)
	}
	rb, err = c.RbacV1().RoleBindings(metav1.NamespaceSystem).Get(ctx, "kubeadm:nodes-kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rb.Labels["team"] != "platform" {
		t.Errorf("a user's label was lost on re-apply: %v", rb.Labels)
	}
	managers := map[string]bool{}
	for _, m := range cm.ManagedFields {
		managers[m.Manager] = true
	}
	if !managers[kubeclient.FieldManager] {
		t.Errorf("cluster-info has no fields managed by %q: %v", kubeclient.FieldManager, cm.ManagedFields)
	}
}
