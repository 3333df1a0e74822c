// Package runmode holds the run modes of the control plane (local, static-pod, systemd), each one
// implementation of Mode, the registry of their names that validation, init's --mode flag and its
// errors use, and the choice of a mode for --mode auto. init, reset, status and
// show-apiserver-options call a Mode and never switch on its name: init writes and starts through
// the chosen one; reset, status and show-apiserver-options ask every registered mode what it
// installed under the root. Adding a mode is one file here plus its entries in registry and
// autoOrder (and its name in config.Modes, see Names).
package runmode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/systemd"
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
	// FindRunning reports what an earlier init of p left running in this mode (local mode's
	// supervisor), so that init resumes or does nothing instead of starting over. The modes whose
	// components systemd or the kubelet (re)starts from the files report nothing.
	FindRunning(p paths.Paths) Running

	// Auto reports whether --mode auto picks this mode on host h for p, and why; modes are
	// asked in autoOrder and the first that says yes is used.
	Auto(h Host, p paths.Paths) (bool, string)
	// Discover reports what this mode installed under p: the control-plane components it runs,
	// each with its command line as the mode would start it. ok is false when the root has
	// nothing of this mode's.
	Discover(p paths.Paths) (in Installed, ok bool)
	// Stop stops what Discover found, through s (reset's view of the host).
	Stop(ctx context.Context, in Installed, s Stopper) error
	// Status reports on the control plane this mode runs under p, for "kubestrap status".
	Status(ctx context.Context, p paths.Paths) (StatusReport, error)
	// Source is the file this mode runs component from, for show-apiserver-options' --source;
	// ok is false when the mode keeps none an operator edits (local mode: the running processes
	// are the source).
	Source(p paths.Paths, component string) (src Source, ok bool)
}

// Running is what FindRunning found.
type Running struct {
	// Found: the root's control plane runs under this mode (local: its supervisor runs), healthy
	// or not yet.
	Found bool
	// Healthy: every component runs and answers its health check.
	Healthy bool
	// What names what runs, for messages ("supervisor pid 123").
	What string
}

// ControlPlane are the control-plane components in start order; stopping goes in reverse.
// kubestrap's CSR approver is run like them (supervised process, unit or static pod).
var ControlPlane = []string{components.EtcdName, components.APIServerName, components.ControllerManagerName, components.SchedulerName, components.CSRApproverName}

// Installed is what one mode left under a root.
type Installed struct {
	// Mode is the mode's name.
	Mode string
	// Components are the control-plane components found, in start order.
	Components []Found
	// Contained says the components run in containers (other mount namespaces), where the
	// root's paths do not identify them: their processes are known by exact command line.
	Contained bool
	// Warnings are problems met while reading; the component concerned is left out.
	Warnings []string
}

// Found is one component a mode runs.
type Found struct {
	Name string
	// Argv is the whole command line: the program, then its arguments.
	Argv []string
	// Source is the file Argv was read from.
	Source string
}

// Names lists the components found.
func (in Installed) Names() []string {
	var out []string
	for _, f := range in.Components {
		out = append(out, f.Name)
	}
	return out
}

// Stopper is what a mode's Stop acts through; reset implements it over its own system boundary
// (and tests with fakes). Each method honours reset's dry run and reports on reset's log.
type Stopper interface {
	// StopUnits stops and disables systemd units, or says why systemd cannot be asked to.
	StopUnits(ctx context.Context, units []string)
	// StopStaticPods removes the manifests of in's components, waits for the kubelet to stop
	// their pods, stops the kubelet and kills the pod processes left.
	StopStaticPods(ctx context.Context, in Installed) error
	// StopLocal stops the root's local supervisor and its components.
	StopLocal() error
}

// StatusReport is a mode's answer to "kubestrap status": a table, JSON (it is marshalled as is),
// and what keeps the control plane from being healthy.
type StatusReport interface {
	WriteTable(w io.Writer) error
	Problems() []string
}

// Source is a component's command line as a mode's file states it.
type Source struct {
	// Name is the value of show-apiserver-options' --source that picks it.
	Name string
	// Label names it in tables and messages.
	Label string
	// Path is the file.
	Path string
	// Read returns the command line; an error satisfying errors.Is(err, fs.ErrNotExist) when
	// the file is missing.
	Read func() (*CommandLine, error)
}

// CommandLine is a component's command line, word by word with where each came from.
type CommandLine struct {
	// Path is the file read.
	Path string
	// Words are the program and its arguments; with ArgsOnly, the arguments only.
	Words []Word
	// ArgsOnly: the words are the arguments of Image's entrypoint (a container without a
	// command).
	ArgsOnly bool
	Image    string
}

// Word is one word of a command line and the place that set it.
type Word struct{ Text, Origin string }

// Host is what --mode auto looks at; tests substitute it.
type Host interface {
	// LookPath finds an executable on PATH (exec.LookPath).
	LookPath(name string) (string, error)
	// Exists reports whether a path exists.
	Exists(path string) bool
	// SystemdRuns reports whether systemd manages this host (systemd.IsPID1Systemd).
	SystemdRuns() bool
}

// RealHost is the running machine.
type RealHost struct{}

func (RealHost) LookPath(name string) (string, error) { return exec.LookPath(name) }
func (RealHost) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
func (RealHost) SystemdRuns() bool { return systemd.IsPID1Systemd() }

// Run is what a mode works on during one init; built once per run.
type Run struct {
	Cfg   *config.Config
	Paths paths.Paths
	// Files writes every file of the mode (nil: the disk, reporting on Log); a dry-run writer
	// (fsutil.NewDryRun) also makes Start and KubeletStart only say what they would run.
	Files fsutil.Writer
	Log   io.Writer

	// installedExe is the root-owned copy of kubestrap that systemd mode's units run, installed
	// once per run before the first unit.
	installedExe string
	// program is local mode's install of the component program, begun by Prepare; install
	// installs it (progstore.ForRoot; tests substitute it).
	program *pendingProgram
	install func(binDir string, log io.Writer) (string, error)
}

// Preparer is a mode that can begin Start's slow part as soon as init's pre-flight checks have
// passed, while the certificates and kubeconfigs are written: local mode installs the component
// program. Start then waits for it.
type Preparer interface {
	Prepare(r *Run)
}

// Prepare begins m's preparation for Start, if m has one (never in a dry run). Whoever calls it
// calls r.Settle before returning.
func Prepare(m Mode, r *Run) {
	if p, ok := m.(Preparer); ok && !r.files().DryRun() {
		p.Prepare(r)
	}
}

// Settle waits for what Prepare began and prints what it logged, if Start has not: a run that
// fails before Start still ends with a complete copy of the program in the store or none, and
// writes nothing after it returned.
func (r *Run) Settle() {
	if r.program != nil {
		r.program.result(r.Log)
	}
}

func (r *Run) files() fsutil.Writer { return fsutil.OrDisk(r.Files, r.Log) }

// registry lists every mode this build runs, in the order of config.Modes. reset reads their
// components in this order (the first that has a component gives its command line) and stops
// them in the reverse.
var registry = []Mode{Local{}, StaticPod{}, Systemd{}}

// autoOrder is the preference of --mode auto: the first mode that can run here wins. The last
// one is taken when no other fits: local mode, which runs anywhere.
var autoOrder = []Mode{StaticPod{}, Systemd{}, Local{}}

// Registered are the modes in registry order.
func Registered() []Mode { return append([]Mode(nil), registry...) }

// Resolve returns the mode called requested, or for "auto" (or "") the first mode of autoOrder
// that can run on h for p, with the reason; reason is "" for a mode requested by name. auto only
// picks a mode that can run here, since init cannot start the others itself and would end with
// nothing running. An explicit mode is returned as requested; init then says when it cannot
// start it.
func Resolve(requested string, h Host, p paths.Paths) (m Mode, reason string, err error) {
	if requested != "" && requested != config.ModeAuto {
		m, err := Get(requested)
		return m, "", err
	}
	for _, m := range autoOrder[:len(autoOrder)-1] {
		if ok, why := m.Auto(h, p); ok {
			return m, why, nil
		}
	}
	last := autoOrder[len(autoOrder)-1]
	_, why := last.Auto(h, p)
	return last, why, nil
}

// DiscoverAll asks every registered mode what it installed under p; only the modes with
// something there are returned, in registry order.
func DiscoverAll(p paths.Paths) []Installed {
	var out []Installed
	for _, m := range registry {
		if in, ok := m.Discover(p); ok {
			out = append(out, in)
		}
	}
	return out
}

// ErrNothingInstalled is Status's error when no mode has anything under the root.
var ErrNothingInstalled = errors.New("no control plane was ever set up under the root")

// Status reports on the control plane of p through the mode that installed it: the first with
// components there, else the first with anything there (a local root whose supervisor never
// wrote its spec). Systemd mode's component links live in the same bin dir as local mode's, so
// a directory alone does not decide.
func Status(ctx context.Context, p paths.Paths) (StatusReport, error) {
	all := DiscoverAll(p)
	if len(all) == 0 {
		return nil, ErrNothingInstalled
	}
	in := all[0]
	for _, i := range all {
		if len(i.Components) > 0 {
			in = i
			break
		}
	}
	m, err := Get(in.Mode)
	if err != nil {
		return nil, err
	}
	return m.Status(ctx, p)
}

// Sources are the file sources of show-apiserver-options for component, in registry order.
func Sources(p paths.Paths, component string) []Source {
	var out []Source
	for _, m := range registry {
		if src, ok := m.Source(p, component); ok {
			out = append(out, src)
		}
	}
	return out
}

// Names are the run modes this build runs, in the order they are listed to users. They are
// config.Modes: config validates KubestrapConfiguration without importing the modes (they import
// config), and TestRegistryMatchesConfig keeps registry and that list the same.
func Names() []string { return config.Modes }

// Choices are the values of --mode: auto, then the modes.
func Choices() []string { return append([]string{config.ModeAuto}, Names()...) }

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
