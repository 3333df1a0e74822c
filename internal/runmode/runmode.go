// Package runmode holds the run modes of the control plane (local, static-pod, systemd), each one
// implementation of Mode, and the registry of their names that validation, init's --mode flag and
// its errors use. init calls the chosen Mode and never switches on its name; adding a mode is one
// file here plus its entry in registry (and its name in config.Modes, see Names).
package runmode

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// Mode is one way of running the control plane on a host.
type Mode interface {
	// Name is the mode's value of --mode and of KubestrapConfiguration's mode.
	Name() string
	// Startable reports whether kubestrap can start what this mode writes under p, and why not.
	// When it cannot, init writes the files, prints the commands that start them and fails at
	// the end instead of waiting.
	Startable(p paths.Paths) (bool, string)
	// WriteComponent writes what the mode runs c from: a static Pod manifest, a systemd unit, or
	// nothing (local mode keeps the command line in the supervisor's spec).
	WriteComponent(r *Run, c components.Component) error
	// Start starts the control-plane components written by WriteComponent, or prints the exact
	// commands an operator runs when kubestrap cannot start them (see Startable).
	Start(ctx context.Context, r *Run) error
	// KubeletStart writes the kubelet's files and restarts it where the mode has a kubelet.
	KubeletStart(ctx context.Context, r *Run) error
	// LogHint is where a component's output goes when it does not become healthy: a log file to
	// show the tail of, or a command that shows it.
	LogHint(p paths.Paths, component string) (logFile, command string)
	// FindsRunning reports whether an earlier init of a root can be found still running in this
	// mode (local mode's supervisor), so that init resumes or does nothing instead of starting
	// over.
	FindsRunning() bool
}

// Run is what a mode works on during one init; built once per run.
type Run struct {
	Cfg    *config.Config
	Paths  paths.Paths
	DryRun bool
	Log    io.Writer

	// installedExe is the root-owned copy of kubestrap that systemd mode's units run, installed
	// once per run before the first unit.
	installedExe string
}

// registry lists every mode this build runs, in the order of config.Modes.
var registry = []Mode{Local{}, StaticPod{}, Systemd{}}

// Names are the run modes this build runs, in the order they are listed to users. They are
// config.Modes: config validates KubestrapConfiguration without importing the modes (they import
// config), and TestRegistryMatchesConfig keeps registry and that list the same.
func Names() []string { return config.Modes }

// Get returns the mode called name, or an error that names the modes there are.
func Get(name string) (Mode, error) {
	for _, m := range registry {
		if m.Name() == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("unknown run mode %q: use %s (or %s)", name, List(Names()), config.ModeAuto)
}

// List joins names as "a, b or c".
func List(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// skipKubelet is KubeletStart of the modes that run the control plane without a kubelet.
func skipKubelet(r *Run, mode string) error {
	fmt.Fprintf(r.Log, "[kubelet-start] Skipped: mode %q runs the control plane without a kubelet\n", mode)
	return nil
}

func componentNames(cps []components.Component) string {
	var names []string
	for _, c := range cps {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}
