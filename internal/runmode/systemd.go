package runmode

import (
	"context"
	"fmt"
	"strings"

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
		exe, err := systemd.InstallBinary(r.files(), r.Paths, "", systemd.InstallFS{}, r.Log)
		if err != nil {
			return err
		}
		r.installedExe = exe
	}
	return systemd.WriteUnit(r.Cfg, r.Paths, c, systemd.Options{Files: r.files(), Log: r.Log, Installed: r.installedExe})
}

// Start starts the control-plane units over D-Bus, or says how to when kubestrap cannot drive
// this host's systemd (then init does not wait, and a whole init fails at the end).
func (Systemd) Start(ctx context.Context, r *Run) error {
	units := systemd.UnitNames(components.ControlPlane(r.Cfg, r.Paths))
	if r.files().DryRun() {
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

func (Systemd) FindRunning(paths.Paths) Running { return Running{} }

// Auto: systemd mode where systemd runs the host (static-pod mode, asked first, did not fit).
func (Systemd) Auto(h Host, p paths.Paths) (bool, string) {
	if !p.IsRealRoot() || !h.SystemdRuns() {
		return false, ""
	}
	return true, "systemd is PID 1 and there is no kubelet with a container runtime"
}

// Discover reads kubestrap's control-plane units present, through systemd.ReadExecStart: the
// command lines systemd runs, drop-ins and Environment= included, so that a data dir moved in a
// drop-in is the one reset cleans. A unit named like ours that kubestrap did not write is not
// this mode's.
func (m Systemd) Discover(p paths.Paths) (Installed, bool) {
	in := Installed{Mode: m.Name()}
	found := false
	for _, name := range ControlPlane {
		unit := systemd.UnitName(name)
		if !systemd.WrittenByKubestrap(p.SystemdUnit(unit)) {
			continue
		}
		found = true
		exec, err := systemd.ReadExecStart(p, unit)
		if err != nil {
			in.Warnings = append(in.Warnings, err.Error())
			continue
		}
		var argv []string
		for _, w := range exec.Words {
			argv = append(argv, w.Text)
		}
		in.Components = append(in.Components, Found{Name: name, Argv: argv, Source: exec.Path})
	}
	return in, found
}

// Stop stops and disables the units, in reverse start order.
func (Systemd) Stop(ctx context.Context, in Installed, s Stopper) error {
	var units []string
	for i := len(in.Components) - 1; i >= 0; i-- {
		units = append(units, systemd.UnitName(in.Components[i].Name))
	}
	if len(units) > 0 {
		s.StopUnits(ctx, units)
	}
	return nil
}

// Status: systemd reports on its units; kubestrap's status reports the local supervisor only.
func (Systemd) Status(_ context.Context, p paths.Paths) (StatusReport, error) {
	var units []string
	for _, in := range ControlPlane {
		units = append(units, systemd.UnitName(in))
	}
	return nil, fmt.Errorf("the control plane runs as systemd units, which kubestrap status does not report on: see them with 'systemctl status %s'", strings.Join(units, " "))
}

// Source is the unit with its drop-ins and environment, each word keeping the file that set it.
func (Systemd) Source(p paths.Paths, component string) (Source, bool) {
	unit := systemd.UnitName(component)
	return Source{Name: "systemd", Label: "unit", Path: p.SystemdUnit(unit), Read: func() (*CommandLine, error) {
		exec, err := systemd.ReadExecStart(p, unit)
		if err != nil {
			return nil, err
		}
		cl := &CommandLine{Path: exec.Path}
		for _, w := range exec.Words {
			cl.Words = append(cl.Words, Word{Text: w.Text, Origin: w.Origin})
		}
		return cl, nil
	}}, true
}
