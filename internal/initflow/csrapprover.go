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
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/controlplane"
	"github.com/kubestrap/kubestrap/internal/csrapprover"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/supervisor"
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
	var kept string
	if err := d.withAdminClient(ctx, func(ctx context.Context, c kubeclient.Interface) (err error) {
		kept, err = csrapprover.EnsureObjects(ctx, c, node, addrs)
		return err
	}); err != nil {
		return err
	}
	warnKeptAddresses(d, node, addrs, kept)
	return waitCSRApproverReady(ctx, d, supervisor.CheckHealth)
}

// joinedCSRApprover is the csr-approver phase of a joining control-plane node: the approver's
// RBAC rules and record exist since init, so it only records this node's addresses where its run
// mode runs a kubelet, and waits for this node's approver. A cluster without the record (its
// init ran with csrApprover.disabled) is left without: a join does not turn on the approver the
// cluster's admin turned off.
func joinedCSRApprover(ctx context.Context, d *Data) error {
	if d.cfg.Kubestrap.CSRApprover.Disabled {
		fmt.Fprintln(d.log, "[csr-approver] Skipped: csrApprover.disabled is set")
		return nil
	}
	node, addrs, err := d.controlPlaneNodeAddresses()
	if err != nil {
		return err
	}
	c := components.CSRApprover(d.cfg, d.p)
	if d.dryRun {
		if node != "" {
			fmt.Fprintf(d.log, "[dryrun] Would record the addresses of this node (%s) in ConfigMap kube-system/%s: %s\n", node, csrapprover.RecordName, csrapprover.FormatAddresses(addrs))
		}
		fmt.Fprintf(d.log, "[dryrun] Would wait for %s to be ready at %s\n", c.Name, c.HealthURL())
		return nil
	}
	// Without the record this node's approver has no rights either and would never be ready.
	cl, err := d.clientset(ctx)
	if err != nil {
		return err
	}
	var kept string
	noRecord := func(err error) bool { return errors.Is(err, csrapprover.ErrNoRecord) }
	err = kubeclient.Retry(ctx, d.cfg.KubernetesAPICallTimeout(), noRecord, func(ctx context.Context) (err error) {
		kept, err = csrapprover.RecordNode(ctx, cl, node, addrs)
		return err
	})
	if noRecord(err) {
		fmt.Fprintf(d.log, "[csr-approver] Skipped: %v, so the cluster runs no kubestrap CSR approver (its init had csrApprover.disabled); set csrApprover.disabled in this join's KubestrapConfiguration too\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	if node != "" {
		fmt.Fprintf(d.log, "[csr-approver] Recorded the addresses of this node (%s): %s\n", node, csrapprover.FormatAddresses(addrs))
		warnKeptAddresses(d, node, addrs, kept)
	}
	return waitCSRApproverReady(ctx, d, supervisor.CheckHealth)
}

// warnKeptAddresses says when the record already held other addresses for node: the approver goes
// by those, so a node that moved gets no serving certificate for its new ones.
func warnKeptAddresses(d *Data, node string, addrs []netip.Addr, kept string) {
	if kept == "" {
		return
	}
	fmt.Fprintf(d.log, "[csr-approver] WARNING: ConfigMap kube-system/%s already records %s for node %s, not %s; the approver approves serving certificates for the recorded addresses only. If the node moved, remove its key from that ConfigMap and run this phase again\n", csrapprover.RecordName, kept, node, csrapprover.FormatAddresses(addrs))
}

// waitCSRApproverReady waits until this node's approver, started with the control plane, answers
// /readyz: with its rights in place it has listed the CSRs and Leases and approves from now on.
// Init then ends with kubelets' serving certificates being approved, not merely approvable.
func waitCSRApproverReady(ctx context.Context, d *Data, check controlplane.CheckFunc) error {
	c := components.CSRApprover(d.cfg, d.p)
	url := c.HealthURL()
	timeout := d.cfg.ControlPlaneHealthTimeout()
	fmt.Fprintf(d.log, "[csr-approver] Waiting for %s to be ready at %s (timeout %s)\n", c.Name, url, timeout)
	start := time.Now()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		last = check(ctx, url)
		return last == nil, nil
	})
	if err == nil {
		fmt.Fprintf(d.log, "[csr-approver] %s is ready after %s\n", c.Name, time.Since(start).Round(time.Millisecond))
		return nil
	}
	if last == nil {
		last = err
	}
	t := controlplane.Target{Name: c.Name, URL: url}
	t.LogFile, t.LogHint = d.mode.LogHint(d.p, c.Name)
	return fmt.Errorf("%s did not become ready within %s, so kubelets' serving certificates would not be approved: %v\n%s", c.Name, timeout, last, t.Output())
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
