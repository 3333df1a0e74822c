package bootstrap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

var controlPlaneTaint = corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}

func TestMarkControlPlane(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	other := corev1.Taint{Key: "example.com/gpu", Value: "true", Effect: corev1.TaintEffectNoExecute}
	fakeC := fake.NewClientset(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "cp-1", Labels: map[string]string{"kubernetes.io/hostname": "cp-1"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{other}},
	})
	c := kubeclienttest.Wrap(fakeC)
	if err := MarkControlPlane(ctx, c, "cp-1", []corev1.Taint{controlPlaneTaint}, time.Second, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	n, err := c.CoreV1().Nodes().Get(ctx, "cp-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{LabelControlPlane, LabelExcludeFromExternalLB, "kubernetes.io/hostname"} {
		if _, ok := n.Labels[l]; !ok {
			t.Errorf("label %s missing: %v", l, n.Labels)
		}
	}
	if n.Labels[LabelControlPlane] != "" {
		t.Errorf("label %s = %q, want empty as kubeadm", LabelControlPlane, n.Labels[LabelControlPlane])
	}
	if len(n.Spec.Taints) != 2 || n.Spec.Taints[0] != other || n.Spec.Taints[1] != controlPlaneTaint {
		t.Errorf("taints %v, want the node's own and the control-plane taint", n.Spec.Taints)
	}

	// Idempotent: a second run writes nothing.
	fakeC.ClearActions()
	if err := MarkControlPlane(ctx, c, "cp-1", []corev1.Taint{controlPlaneTaint}, time.Second, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, a := range fakeC.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("a second run did %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

// taints: [] in the configuration means none, as in kubeadm; the labels are still set.
func TestMarkControlPlaneWithoutTaints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fakeC := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-1"}})
	c := kubeclienttest.Wrap(fakeC)
	if err := MarkControlPlane(ctx, c, "cp-1", []corev1.Taint{}, time.Second, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	n, _ := c.CoreV1().Nodes().Get(ctx, "cp-1", metav1.GetOptions{})
	if len(n.Spec.Taints) != 0 {
		t.Errorf("taints %v, want none", n.Spec.Taints)
	}
	if _, ok := n.Labels[LabelControlPlane]; !ok {
		t.Errorf("labels %v", n.Labels)
	}
}

// A Node that never registers ends the wait with an error that says what to check; one that
// registers during the wait is marked.
func TestMarkControlPlaneWaitsForTheNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fakeC := fake.NewClientset()
	c := kubeclienttest.Wrap(fakeC)
	err := MarkControlPlane(ctx, c, "cp-1", nil, 50*time.Millisecond, 10*time.Millisecond)
	if !errors.Is(err, ErrNodeNotRegistered) {
		t.Fatalf("got %v, want ErrNodeNotRegistered", err)
	}
	for _, want := range []string{`"cp-1"`, "kubelet", "nodeRegistration.name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}

	// No wait at all (systemd mode's whole init): one look.
	if err := MarkControlPlane(ctx, c, "cp-1", nil, 0, 10*time.Millisecond); !errors.Is(err, ErrNodeNotRegistered) {
		t.Fatalf("no wait, no Node: got %v, want ErrNodeNotRegistered", err)
	}

	go func() {
		time.Sleep(100 * time.Millisecond)
		c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-1"}}, metav1.CreateOptions{})
	}()
	if err := MarkControlPlane(ctx, c, "cp-1", []corev1.Taint{controlPlaneTaint}, time.Minute, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	n, _ := c.CoreV1().Nodes().Get(ctx, "cp-1", metav1.GetOptions{})
	if len(n.Spec.Taints) != 1 {
		t.Errorf("taints %v", n.Spec.Taints)
	}
	if err := MarkControlPlane(ctx, c, "cp-1", nil, 0, 10*time.Millisecond); err != nil {
		t.Errorf("no wait, Node there: %v", err)
	}
}
