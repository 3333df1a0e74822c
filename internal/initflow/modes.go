package initflow

import (
	"context"
	"fmt"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubelet"
	"github.com/kubestrap/kubestrap/internal/staticpod"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// writeStaticPodManifest writes c's static Pod manifest (static-pod mode).
func writeStaticPodManifest(d *Data, c components.Component) error {
	pod, err := staticpod.Pod(d.cfg, d.p, c)
	if err != nil {
		return err
	}
	return staticpod.Write(d.p, pod, staticpod.Options{DryRun: d.dryRun, Log: d.log})
}

// writeSystemdUnit writes c's unit and component symlink (systemd mode).
func writeSystemdUnit(d *Data, c components.Component) error {
	return systemd.WriteUnit(d.cfg, d.p, c, systemd.Options{DryRun: d.dryRun, Log: d.log})
}

// startSystemd starts the control-plane units over D-Bus, or says how to when kubestrap cannot
// drive this host's systemd (then init does not wait: see shouldWaitForControlPlane).
func startSystemd(ctx context.Context, d *Data) error {
	units := systemd.UnitNames(components.ControlPlane(d.cfg, d.p))
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would run: %s\n", systemd.ManualStartCommand(d.p, units))
		return nil
	}
	if ok, why := systemd.Manageable(d.p); !ok {
		fmt.Fprintf(d.log, "[control-plane] Wrote the systemd units but did not start them: %s.\n[control-plane] To start the control plane, run:\n\n  %s\n\n", why, systemd.ManualStartCommand(d.p, units))
		return nil
	}
	m, err := systemd.NewManager(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	return systemd.Start(ctx, m, units, d.log)
}

// runKubeletStart writes the kubelet's files and restarts it; only static-pod mode has a kubelet.
func runKubeletStart(ctx context.Context, d *Data) error {
	if d.mode != config.ModeStaticPod {
		fmt.Fprintf(d.log, "[kubelet-start] Skipped: mode %q runs the control plane without a kubelet\n", d.mode)
		return nil
	}
	kc, err := kubelet.Configuration(d.cfg)
	if err != nil {
		return err
	}
	nr := d.cfg.Init.NodeRegistration
	flags := kubelet.NodeFlags{
		NodeName:  d.cfg.NodeName(),
		CRISocket: nr.CRISocket,
		// Registered with the Node, because init has no mark-control-plane phase that would
		// add them afterwards; this also closes the window in which kubeadm's control-plane
		// node is schedulable.
		Taints:    nr.Taints,
		ExtraArgs: nr.KubeletExtraArgs,
	}
	if err := kubelet.WriteNodeFiles(d.p, kc, flags, kubelet.Options{DryRun: d.dryRun, Log: d.log}); err != nil {
		return err
	}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would run: %s\n", systemd.KubeletRestartCommand(d.p))
		return nil
	}
	if ok, why := systemd.Manageable(d.p); !ok {
		fmt.Fprintf(d.log, "[kubelet-start] Wrote the kubelet's files but did not restart it: %s.\n[kubelet-start] To run the control plane's static pods, run:\n\n  %s\n\n", why, systemd.KubeletRestartCommand(d.p))
		return nil
	}
	m, err := systemd.NewManager(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintln(d.log, "[kubelet-start] Restarting the kubelet")
	if err := m.Reload(ctx); err != nil {
		return err
	}
	// Always a restart, as kubeadm does: the kubelet reads its flags and configuration only
	// when it starts.
	return m.EnableAndRestart(ctx, []string{systemd.KubeletUnit})
}

// shouldWaitForControlPlane reports whether wait-control-plane can expect the components to come
// up: not when static-pod or systemd mode only wrote files for an operator to start.
func shouldWaitForControlPlane(d *Data) bool {
	if d.mode == config.ModeLocal {
		return true
	}
	ok, _ := systemd.Manageable(d.p)
	return ok
}

// CheckModeAvailable fails before anything is written when mode is not one this build runs.
func CheckModeAvailable(mode string) error {
	switch mode {
	case config.ModeLocal, config.ModeStaticPod, config.ModeSystemd:
		return nil
	}
	return fmt.Errorf("unknown run mode %q: use local, static-pod or systemd (or auto)", mode)
}
