package initflow

// The csr-approver phase: the objects kubestrap's kubelet-serving CSR approver needs in the
// cluster (its process is started with the control plane by the run mode).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"

	"k8s.io/client-go/kubernetes"

	"github.com/kubestrap/kubestrap/internal/csrapprover"
)

func runCSRApproverObjects(ctx context.Context, d *Data) error {
	if d.cfg.Kubestrap.CSRApprover.Disabled {
		fmt.Fprintln(d.log, "[csr-approver] Skipped: csrApprover.disabled is set; approve kubelet serving CSRs with 'kubectl certificate approve' or your own approver")
		return nil
	}
	node, addrs, err := d.controlPlaneNodeAddresses()
	if err != nil {
		return err
	}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would create ClusterRole, ClusterRoleBinding, Roles and RoleBindings %s for user %s, and ConfigMap kube-system/%s\n", csrapprover.RBACName, csrapprover.User, csrapprover.RecordName)
		return nil
	}
	fmt.Fprintf(d.log, "[csr-approver] Creating the RBAC rules of %s and ConfigMap kube-system/%s, where it records each node's join addresses\n", csrapprover.User, csrapprover.RecordName)
	if node != "" {
		fmt.Fprintf(d.log, "[csr-approver] Recording the addresses of this node (%s): %s\n", node, csrapprover.FormatAddresses(addrs))
	}
	return d.withAdminClient(ctx, func(ctx context.Context, c kubernetes.Interface) error {
		return csrapprover.EnsureObjects(ctx, c, node, addrs)
	})
}

// controlPlaneNodeAddresses are this node's name and addresses when it runs a kubelet that
// kubestrap configured (kubelet-start wrote its config.yaml), so that its serving certificate can
// be approved; init, run by a cluster admin, vouches for them as join does for a worker. Without
// a kubelet here nothing is recorded: a worker joining later under this node's name must not
// inherit the control plane's addresses.
func (d *Data) controlPlaneNodeAddresses() (string, []netip.Addr, error) {
	if _, err := os.Stat(d.p.KubeletConfig()); errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	} else if err != nil {
		return "", nil, err
	}
	nr := d.cfg.Init.NodeRegistration
	addrs, err := csrapprover.NodeAddresses(nr.KubeletExtraArgs, func() (string, error) { return d.cfg.AdvertiseAddress(), nil })
	if err != nil {
		return "", nil, err
	}
	return d.cfg.NodeName(), addrs, nil
}
