package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// The labels kubeadm puts on a control-plane Node: its role, and the opt-out from external load
// balancers (the control plane's own traffic must not be balanced to it as a workload node).
const (
	LabelControlPlane          = "node-role.kubernetes.io/control-plane"
	LabelExcludeFromExternalLB = "node.kubernetes.io/exclude-from-external-load-balancers"
)

// ErrNodeNotRegistered is returned by MarkControlPlane when the Node did not appear in time.
var ErrNodeNotRegistered = errors.New("node not registered")

// ControlPlaneLabels are the labels MarkControlPlane sets, in the order messages list them.
func ControlPlaneLabels() []string { return []string{LabelControlPlane, LabelExcludeFromExternalLB} }

// MarkControlPlane labels Node name as a control-plane node and adds taints to it, keeping its
// other labels and taints, as kubeadm's mark-control-plane does. It waits up to wait (0: not at
// all) for the kubelet to register the Node, polling every interval, and then fails with
// ErrNodeNotRegistered. Marking a marked Node changes nothing.
func MarkControlPlane(ctx context.Context, c kubeclient.Interface, name string, taints []corev1.Taint, waitFor, interval time.Duration) error {
	nodes := c.CoreV1().Nodes()
	var node *corev1.Node
	var lastErr error
	get := func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			lastErr = err
			return false, nil
		}
		node = n
		return true, nil
	}
	var err error
	if waitFor > 0 {
		err = wait.PollUntilContextTimeout(ctx, interval, waitFor, true, get)
	} else {
		// One look, with the caller's context: a zero timeout would cancel the request itself.
		_, err = get(ctx)
	}
	if node == nil {
		if lastErr != nil && !apierrors.IsNotFound(lastErr) {
			return fmt.Errorf("get Node %s: %w", name, lastErr)
		}
		if err == nil {
			err = lastErr
		}
		return fmt.Errorf("%w: no Node %q after %s; is this node's kubelet running and registering under that name (nodeRegistration.name)? (%v)", ErrNodeNotRegistered, name, waitFor, err)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get Node %s: %w", name, err)
		}
		if !markControlPlane(n, taints) {
			return nil
		}
		if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{FieldManager: kubeclient.FieldManager}); err != nil {
			return fmt.Errorf("update Node %s: %w", name, err)
		}
		return nil
	})
}

// markControlPlane adds the labels and the taints missing from n and reports whether it changed
// anything. A taint counts as present when one with the same key and effect is there (the API's
// own identity for taints), whatever its value.
func markControlPlane(n *corev1.Node, taints []corev1.Taint) bool {
	changed := false
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	for _, l := range ControlPlaneLabels() {
		if v, ok := n.Labels[l]; !ok || v != "" {
			n.Labels[l] = ""
			changed = true
		}
	}
	for _, t := range taints {
		if !slices.ContainsFunc(n.Spec.Taints, func(have corev1.Taint) bool { return have.Key == t.Key && have.Effect == t.Effect }) {
			n.Spec.Taints = append(n.Spec.Taints, t)
			changed = true
		}
	}
	return changed
}
