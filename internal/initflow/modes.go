package initflow

import (
	"context"
	"errors"
	"fmt"
	"slices"

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

// writeSystemdUnit writes c's unit and component symlink (systemd mode). The kubestrap binary is
// installed root-owned once per run, before the first unit: every unit then runs that copy.
func writeSystemdUnit(d *Data, c components.Component) error {
	if d.installedExe == "" {
		exe, err := systemd.InstallBinary(d.p, "", systemd.InstallFS{}, d.dryRun, d.log)
		if err != nil {
			return err
		}
		d.installedExe = exe
	}
	return systemd.WriteUnit(d.cfg, d.p, c, systemd.Options{DryRun: d.dryRun, Log: d.log, Installed: d.installedExe})
}

// startSystemd starts the control-plane units over D-Bus, or says how to when kubestrap cannot
// drive this host's systemd (then init does not wait, see shouldWaitForControlPlane, and a whole
// init fails at the end, see CheckStarted).
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

// ErrNotStarted is returned by CheckStarted: init wrote the control plane's files but nothing
// runs them.
var ErrNotStarted = errors.New("the control plane was not started")

// CheckStarted is the verdict of a whole "kubestrap init" after its phases ran: an error when the
// run mode's files were written but kubestrap could not start them (static-pod or systemd mode
// under a root dir, or on a host where systemd is not PID 1), so that an operator never reads
// success while nothing runs. The commands that start the control plane were printed by the phase
// that could not run them. Skipping wait-control-plane says the caller does not expect a running
// control plane, so then this is not an error.
func CheckStarted(d *Data) error {
	if d.dryRun || shouldWaitForControlPlane(d) || slices.Contains(d.skip, "wait-control-plane") {
		return nil
	}
	_, why := systemd.Manageable(d.p)
	next := "kubestrap init phase wait-control-plane --mode " + d.mode
	if !d.p.IsRealRoot() {
		next += " --root-dir " + d.p.Root()
	}
	return fmt.Errorf("%w: %s mode wrote its files under %s, but kubestrap cannot start them here (%s); start them with the commands printed above, then run '%s' and the phases after it with the same configuration",
		ErrNotStarted, d.mode, d.p.Root(), why, next)
}

// CheckModeAvailable fails before anything is written when mode is not one this build runs.
func CheckModeAvailable(mode string) error {
	switch mode {
	case config.ModeLocal, config.ModeStaticPod, config.ModeSystemd:
		return nil
	}
	return fmt.Errorf("unknown run mode %q: use local, static-pod or systemd (or auto)", mode)
}
