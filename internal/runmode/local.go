package runmode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/controlplane"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/supervisor"
)

// Local runs the control plane as child processes of kubestrap's own supervisor, under any root
// dir and without systemd or a kubelet.
type Local struct{}

func (Local) Name() string { return config.ModeLocal }

// Startable: the supervisor runs anywhere kubestrap runs.
func (Local) Startable(paths.Paths) (bool, string) { return true, "" }

// WriteComponent writes nothing: the supervisor's spec, written when it starts, holds the
// command lines. A dry run shows each one.
func (Local) WriteComponent(r *Run, c components.Component) error {
	if r.DryRun {
		fmt.Fprintf(r.Log, "[dryrun] Would run %s as:\n  %s %s\n", c.Name, r.Paths.ComponentBinary(c.Name), strings.Join(c.Args, " \\\n    "))
	}
	return nil
}

// Start launches the detached supervisor of the root, or notes that it already runs.
func (Local) Start(ctx context.Context, r *Run) error {
	cps := components.ControlPlane(r.Cfg, r.Paths)
	if r.DryRun {
		fmt.Fprintf(r.Log, "[dryrun] Would start the local supervisor for %s\n", componentNames(cps))
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the kubestrap executable: %w", err)
	}
	spec := controlplane.SupervisorSpec(r.Cfg, r.Paths, cps, exe)
	fmt.Fprintf(r.Log, "[control-plane] Starting %s under the local supervisor (logs in %s)\n", componentNames(cps), r.Paths.LogDir())
	pid, err := supervisor.Host{Log: r.Log}.Start(r.Paths, spec, exe)
	if errors.Is(err, supervisor.ErrAlreadyRunning) {
		fmt.Fprintf(r.Log, "[control-plane] The supervisor of this root is already running (pid %d)\n", pid)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Log, "[control-plane] Supervisor running with pid %d\n", pid)
	return nil
}

func (m Local) KubeletStart(_ context.Context, r *Run) error { return skipKubelet(r, m.Name()) }

// LogHint: the supervisor writes each component's output to its log file.
func (Local) LogHint(p paths.Paths, component string) (string, string) {
	return p.ComponentLog(component), ""
}

func (Local) FindsRunning() bool { return true }
