package join

import (
	"context"
	"errors"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/csrapprover"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// RecordAddresses puts the addresses this node has now, when it joins, on its Lease in
// kube-node-lease (annotation kubestrap.io/join-addresses), with the node's own credentials from
// kubelet.conf: NodeRestriction lets a node write only its own Lease. kubestrap's CSR approver
// freezes the first value it sees and approves serving certificates for those addresses only;
// a later change of the annotation is ignored.
//
// The Lease rather than the Node: a Node created before the kubelet registers would lose the
// kubelet's --register-with-taints and --node-labels (the kubelet applies them only when it
// creates the Node, and NodeRestriction forbids it to add taints later). The kubelet takes over
// an existing Lease and keeps its annotations.
func (j *Join) RecordAddresses(ctx context.Context) (err error) {
	defer j.undoOnError(&err)
	nr := j.o.Config.Join.NodeRegistration
	addrs, err := csrapprover.NodeAddresses(nr.KubeletExtraArgs, j.defaultAddress)
	if errors.Is(err, csrapprover.ErrNoAddress) {
		// The join itself does not depend on it; the approver says why it leaves the node's
		// serving CSRs with IP addresses pending.
		j.logf("[join-addresses] WARNING: not recording this node's addresses: %v; kubestrap's CSR approver will not approve serving certificates with IP addresses for it", err)
		return nil
	}
	if err != nil {
		return err
	}
	value := csrapprover.FormatAddresses(addrs)
	node := j.NodeName()
	if j.o.DryRun {
		j.logf("[dryrun] Would annotate Lease %s/%s with %s=%s, as the node", corev1.NamespaceNodeLease, node, csrapprover.JoinAddressesAnnotation, value)
		return nil
	}
	path := j.o.Paths.Kubeconfig(KubeletConf)
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return fmt.Errorf("load the node's credentials: %w", err)
	}
	c, err := j.newClient(kc)
	if err != nil {
		return err
	}
	j.logf("[join-addresses] Recording this node's addresses (%s) on Lease %s/%s for kubelet serving certificates", value, corev1.NamespaceNodeLease, node)
	return j.withAPIRetry(ctx, func(ctx context.Context) error { return annotateLease(ctx, c, node, value) })
}

// defaultAddress is the address a kubelet reports when it is given no --node-ip: the first
// address of the default route's interface.
func (j *Join) defaultAddress() (string, error) {
	if j.o.DefaultAddress != nil {
		return j.o.DefaultAddress()
	}
	ip, err := config.SystemHost{}.DefaultIPv4()
	if err != nil {
		return "", err
	}
	return ip.String(), nil
}

func annotateLease(ctx context.Context, c kubeclient.Interface, node, value string) error {
	leases := c.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	_, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: corev1.NamespaceNodeLease, Annotations: map[string]string{csrapprover.JoinAddressesAnnotation: value}},
		// The kubelet keeps the holder of a Lease it finds; it would otherwise set its node name.
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &node},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	// A node that joins again (after a reset) says where it is now; the approver still holds
	// the first value until an admin removes it from its record.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[csrapprover.JoinAddressesAnnotation] = value
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
}
