package initflow

// The part of init that a control-plane join (join --control-plane) runs too. A joining node's
// control plane is set up by the same functions init's phases call, on the configuration the join
// assembled (config.ControlPlaneConfig), so that its certificates, kubeconfigs, component files,
// processes and waits are exactly what init makes; the join adds what is its own (certificate
// download, the etcd member) around them.

import (
	"context"
	"fmt"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
	"github.com/kubestrap/kubestrap/internal/runmode"

	"github.com/kubestrap/kubestrap/internal/config"
)

// JoinedKubeconfigs are the kubeconfig files a joining control-plane node makes: kubeadm's
// (admin, controller-manager, scheduler), the kubelet's (static-pod mode's kubelet runs the
// control plane) and the CSR approver's. super-admin.conf, the break-glass credential that
// bypasses RBAC, stays on the first node alone, as with kubeadm.
var JoinedKubeconfigs = []string{kubeconfig.Admin, kubeconfig.Kubelet, kubeconfig.ControllerManager, kubeconfig.Scheduler, kubeconfig.CSRApprover}

// ControlPlane is a joining node's control plane, run through init's functions.
type ControlPlane struct{ d *Data }

// NewControlPlane prepares the control plane of cfg under p in mode, as New does for init.
func NewControlPlane(cfg *config.Config, p paths.Paths, mode string, o Options) (*ControlPlane, error) {
	d, err := New(cfg, p, mode, o)
	if err != nil {
		return nil, err
	}
	return &ControlPlane{d: d}, nil
}

// Mode is the run mode the control plane runs in.
func (c *ControlPlane) Mode() runmode.Mode { return c.d.mode }

// Preflight is init's preflight phase: the advertise address is this host's, the ports are free
// and the etcd data dir is empty.
func (c *ControlPlane) Preflight(ctx context.Context) error { return runPreflight(ctx, c.d) }

// Certs makes this node's certificates, as init's certs phase: the shared CAs and keys must be in
// place (downloaded), so only the node's own leaf certificates are new, with its own SANs.
func (c *ControlPlane) Certs(ctx context.Context) error {
	return pki.EnsureCerts(c.d.cfg, c.d.p, pki.CertNames(c.d.cfg), c.d.pkiOptions())
}

// Kubeconfigs makes JoinedKubeconfigs, as init's kubeconfig phase.
func (c *ControlPlane) Kubeconfigs(ctx context.Context) error {
	return kubeconfig.EnsureKubeconfigs(c.d.cfg, c.d.p, JoinedKubeconfigs, c.d.pkiOptions())
}

// WriteComponents is init's control-plane phase without the start: the files of kube-apiserver,
// kube-controller-manager, kube-scheduler and the CSR approver for the run mode.
func (c *ControlPlane) WriteComponents(ctx context.Context) error {
	for _, name := range []string{components.APIServerName, components.ControllerManagerName, components.SchedulerName, components.CSRApproverName} {
		if err := componentPhase(name)(ctx, c.d); err != nil {
			return err
		}
	}
	return nil
}

// WriteEtcd is init's etcd local phase: the data dir and the member's manifest or unit, with
// cfg.EtcdInitialCluster set by the caller once the member was added.
func (c *ControlPlane) WriteEtcd(ctx context.Context) error { return runEtcdLocal(ctx, c.d) }

// Start starts the components through the run mode, as init's control-plane phase ends, and
// KubeletStart is init's kubelet-start (static-pod mode's kubelet runs them).
func (c *ControlPlane) Start(ctx context.Context) error { return startControlPlane(ctx, c.d) }

// KubeletStart is init's kubelet-start phase.
func (c *ControlPlane) KubeletStart(ctx context.Context) error { return runKubeletStart(ctx, c.d) }

// Startable reports whether kubestrap can start the run mode's files here (see runmode.Mode).
func (c *ControlPlane) Startable() (bool, string) { return c.d.mode.Startable(c.d.p) }

// Wait is init's wait-control-plane phase: every component healthy.
func (c *ControlPlane) Wait(ctx context.Context) error {
	if err := c.useAdmin(); err != nil {
		return err
	}
	return runWaitControlPlane(ctx, c.d)
}

// MarkControlPlane is init's mark-control-plane phase, skipped with init's note where the run mode
// registers no Node (local mode).
func (c *ControlPlane) MarkControlPlane(ctx context.Context) error {
	if ok, why := markControlPlaneRunIf(ctx, c.d); !ok {
		fmt.Fprintln(c.d.log, why)
		return nil
	}
	if err := c.useAdmin(); err != nil {
		return err
	}
	return runMarkControlPlane(ctx, c.d)
}

// CSRApprover is init's csr-approver phase for the joining node (joinedCSRApprover): this node's
// addresses recorded for its kubelet's serving certificates where its run mode runs a kubelet
// (static-pod mode), as init records the first node's, and the wait until this node's approver is
// ready.
func (c *ControlPlane) CSRApprover(ctx context.Context) error {
	if err := c.useAdmin(); err != nil {
		return err
	}
	return joinedCSRApprover(ctx, c.d)
}

// useAdmin makes admin.conf the client of the phases that talk to the cluster: a joining node has
// no super-admin.conf (init's way to its admin binding), and needs none, since the cluster has
// had that binding since its init.
func (c *ControlPlane) useAdmin() error {
	if c.d.client != nil || c.d.dryRun {
		return nil
	}
	cl, err := clientFromKubeconfig(c.d.p.Kubeconfig(kubeconfig.Admin+".conf"), c.d.log)
	if err != nil {
		return err
	}
	c.d.client = cl
	return nil
}
