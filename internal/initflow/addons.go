package initflow

// The phases that finish the cluster as kubeadm does: mark-control-plane (the control-plane
// Node's labels and taints) and addon/coredns, addon/kube-proxy.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubestrap/kubestrap/internal/addons"
	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// nodePollInterval paces the wait for the control-plane Node to register.
const nodePollInterval = time.Second

// markControlPlaneRunIf: a whole init in local mode has no kubelet on the control plane, so no
// Node to mark; one line says so (k0s's controllers are node-less by default for the same
// reason). Run alone ("init phase mark-control-plane"), the phase always runs: an operator who
// started a kubelet under the control plane's node name asks for it.
func markControlPlaneRunIf(ctx context.Context, d *Data) (bool, string) {
	if ok, why := controlPlaneRunning(ctx, d); !ok {
		return false, why
	}
	if workflow.WholeRun(ctx) && d.mode.Name() == config.ModeLocal {
		return false, fmt.Sprintf("[mark-control-plane] Skipped: mode %q runs no kubelet on the control plane, so there is no Node %q to label and taint", config.ModeLocal, d.cfg.Init.NodeRegistration.Name)
	}
	return true, ""
}

// runMarkControlPlane labels and taints the control-plane Node. Static-pod mode's kubelet
// registers it, so a whole init waits for it (timeouts.kubernetesAPICall). systemd mode starts no
// kubelet: a whole init marks the Node if one registered already and otherwise says how to mark it
// later. Run alone, the phase waits in every mode.
func runMarkControlPlane(ctx context.Context, d *Data) error {
	name := d.cfg.Init.NodeRegistration.Name
	taints := d.cfg.Init.NodeRegistration.Taints
	fmt.Fprintf(d.log, "[mark-control-plane] Marking the node %s as control-plane by adding the labels: %v\n", name, bootstrap.ControlPlaneLabels())
	if len(taints) > 0 {
		var ts []string
		for _, t := range taints {
			ts = append(ts, t.ToString())
		}
		fmt.Fprintf(d.log, "[mark-control-plane] Marking the node %s as control-plane by adding the taints %v\n", name, ts)
	}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would add the labels and taints above to Node %s\n", name)
		return nil
	}
	waitFor := d.cfg.KubernetesAPICallTimeout()
	optional := workflow.WholeRun(ctx) && d.mode.Name() != config.ModeStaticPod
	if optional {
		waitFor = 0
	}
	// Retried like the other phases' API calls (the admin binding may not be usable for a moment
	// after the apiserver turns ready), except that a Node that did not register is final: the
	// wait for it is MarkControlPlane's own, bounded by the same timeout.
	notRegistered := func(err error) bool { return errors.Is(err, bootstrap.ErrNodeNotRegistered) }
	err := kubeclient.Retry(ctx, d.cfg.KubernetesAPICallTimeout(), notRegistered, func(ctx context.Context) error {
		c, err := d.clientset(ctx)
		if err != nil {
			return err
		}
		return bootstrap.MarkControlPlane(ctx, c, name, taints, waitFor, nodePollInterval)
	})
	if optional && notRegistered(err) {
		fmt.Fprintf(d.log, "[mark-control-plane] Skipped: no kubelet has registered Node %q (mode %q starts none); once one has, run: kubestrap init phase mark-control-plane\n", name, d.mode.Name())
		return nil
	}
	return err
}

// addonRunIf skips an addon the configuration disables (dns.disabled, proxy.disabled), as
// kubeadm does whether the phase runs in a whole init or alone.
func addonRunIf(name string, disabled func(*config.Config) bool, field string) func(context.Context, *Data) (bool, string) {
	return func(ctx context.Context, d *Data) (bool, string) {
		if ok, why := controlPlaneRunning(ctx, d); !ok {
			return false, why
		}
		if disabled(d.cfg) {
			return false, fmt.Sprintf("[addons] Not installing %s: it is disabled (%s: true)", name, field)
		}
		return true, ""
	}
}

// addonObjects is what each addon package builds: its objects, listed for printing and applying.
type addonObjects interface{ List() []runtime.Object }

// runAddon is an addon phase: build the addon's objects from the configuration, print them in a
// dry run, otherwise apply them with the admin credentials.
func runAddon[O addonObjects](name string, build func(*config.Config) (O, error), ensure func(context.Context, kubeclient.Interface, O) error) func(context.Context, *Data) error {
	return func(ctx context.Context, d *Data) error {
		o, err := build(d.cfg)
		if err != nil {
			return err
		}
		if d.dryRun {
			return printAddon(d.log, name, o.List())
		}
		if err := d.withAdminClient(ctx, func(ctx context.Context, c kubeclient.Interface) error {
			return ensure(ctx, c, o)
		}); err != nil {
			return err
		}
		fmt.Fprintf(d.log, "[addons] Applied essential addon: %s\n", name)
		return nil
	}
}

func printAddon(w io.Writer, name string, objs []runtime.Object) error {
	fmt.Fprintf(w, "[dryrun] Would apply the %s addon's objects (field manager kubestrap):\n", name)
	return addons.Print(w, objs)
}

func addonPhase() workflow.Phase[*Data] {
	return workflow.Phase[*Data]{Name: "addon", Short: "Install the CoreDNS and kube-proxy addons", Phases: []workflow.Phase[*Data]{
		{Name: "coredns", Short: "Install the CoreDNS addon", Run: runAddon("CoreDNS", addons.CoreDNSObjects, addons.EnsureCoreDNS),
			RunIf: addonRunIf("CoreDNS", func(c *config.Config) bool { return c.Cluster.DNS.Disabled }, "dns.disabled")},
		{Name: "kube-proxy", Short: "Install the kube-proxy addon", Run: runAddon("kube-proxy", addons.KubeProxyObjects, addons.EnsureKubeProxy),
			RunIf: addonRunIf("kube-proxy", func(c *config.Config) bool { return c.Cluster.Proxy.Disabled }, "proxy.disabled")},
	}}
}
