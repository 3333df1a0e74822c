package runmode

import (
	"context"
	"fmt"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// Systemd runs each control-plane component as a systemd unit of the host.
type Systemd struct{}

func (Systemd) Name() string { return config.ModeSystemd }

// Startable: only the host's own systemd, driven over D-Bus, starts the units.
func (Systemd) Startable(p paths.Paths) (bool, string) { return systemd.Manageable(p) }

// WriteComponent writes c's unit and component symlink. The kubestrap binary is installed
// root-owned once per run, before the first unit: every unit then runs that copy.
func (Systemd) WriteComponent(r *Run, c components.Component) error {
	if r.installedExe == "" {
		exe, err := systemd.InstallBinary(r.Paths, "", systemd.InstallFS{}, r.DryRun, r.Log)
		if err != nil {
			return err
		}
		r.installedExe = exe
	}
	return systemd.WriteUnit(r.Cfg, r.Paths, c, systemd.Options{DryRun: r.DryRun, Log: r.Log, Installed: r.installedExe})
}

// Start starts the control-plane units over D-Bus, or says how to when kubestrap cannot drive
// this host's systemd (then init does not wait, and a whole init fails at the end).
func (Systemd) Start(ctx context.Context, r *Run) error {
	units := systemd.UnitNames(components.ControlPlane(r.Cfg, r.Paths))
	if r.DryRun {
		fmt.Fprintf(r.Log, "[dryrun] Would run: %s\n", systemd.ManualStartCommand(r.Paths, units))
		return nil
	}
	if ok, why := systemd.Manageable(r.Paths); !ok {
		fmt.Fprintf(r.Log, "[control-plane] Wrote the systemd units but did not start them: %s.\n[control-plane] To start the control plane, run:\n\n  %s\n\n", why, systemd.ManualStartCommand(r.Paths, units))
		return nil
	}
	m, err := systemd.NewManager(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	return systemd.Start(ctx, m, units, r.Log)
}

func (m Systemd) KubeletStart(_ context.Context, r *Run) error { return skipKubelet(r, m.Name()) }

// LogHint: journald keeps each unit's output.
func (Systemd) LogHint(_ paths.Paths, component string) (string, string) {
	return "", "journalctl -u " + component + ".service"
}

func (Systemd) FindsRunning() bool { return false }
