package runmode

import (
	"context"
	"fmt"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubelet"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/staticpod"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// StaticPod writes kubeadm's static Pod manifests and lets the host's kubelet, restarted through
// systemd, run them.
type StaticPod struct{}

func (StaticPod) Name() string { return config.ModeStaticPod }

// Startable: the kubelet is restarted through the host's systemd.
func (StaticPod) Startable(p paths.Paths) (bool, string) { return systemd.Manageable(p) }

// WriteComponent writes c's static Pod manifest.
func (StaticPod) WriteComponent(r *Run, c components.Component) error {
	pod, err := staticpod.Pod(r.Cfg, r.Paths, c)
	if err != nil {
		return err
	}
	return staticpod.Write(r.Paths, pod, staticpod.Options{DryRun: r.DryRun, Log: r.Log})
}

// Start does nothing: the kubelet, restarted by KubeletStart, runs the manifests.
func (StaticPod) Start(context.Context, *Run) error { return nil }

// KubeletStart writes the kubelet's files and restarts it, or prints the command that does when
// kubestrap cannot drive this host's systemd.
func (StaticPod) KubeletStart(ctx context.Context, r *Run) error {
	kc, err := kubelet.Configuration(r.Cfg)
	if err != nil {
		return err
	}
	nr := r.Cfg.Init.NodeRegistration
	flags := kubelet.NodeFlags{
		NodeName:  r.Cfg.NodeName(),
		CRISocket: nr.CRISocket,
		// Registered with the Node, because init has no mark-control-plane phase that would
		// add them afterwards; this also closes the window in which kubeadm's control-plane
		// node is schedulable.
		Taints:    nr.Taints,
		ExtraArgs: nr.KubeletExtraArgs,
	}
	if err := kubelet.WriteNodeFiles(r.Paths, kc, flags, kubelet.Options{DryRun: r.DryRun, Log: r.Log}); err != nil {
		return err
	}
	if r.DryRun {
		fmt.Fprintf(r.Log, "[dryrun] Would run: %s\n", systemd.KubeletRestartCommand(r.Paths))
		return nil
	}
	if ok, why := systemd.Manageable(r.Paths); !ok {
		fmt.Fprintf(r.Log, "[kubelet-start] Wrote the kubelet's files but did not restart it: %s.\n[kubelet-start] To run the control plane's static pods, run:\n\n  %s\n\n", why, systemd.KubeletRestartCommand(r.Paths))
		return nil
	}
	m, err := systemd.NewManager(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintln(r.Log, "[kubelet-start] Restarting the kubelet")
	if err := m.Reload(ctx); err != nil {
		return err
	}
	// Always a restart, as kubeadm does: the kubelet reads its flags and configuration only
	// when it starts.
	return m.EnableAndRestart(ctx, []string{systemd.KubeletUnit})
}

// LogHint: the container runtime keeps the pods' output.
func (StaticPod) LogHint(_ paths.Paths, component string) (string, string) {
	return "", "crictl logs $(crictl ps -a --name " + component + " -q | head -1)"
}

func (StaticPod) FindsRunning() bool { return false }
