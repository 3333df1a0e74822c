package runmode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/progstore"
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
	if r.files().DryRun() {
		fmt.Fprintf(r.Log, "[dryrun] Would run %s as:\n  %s %s\n", c.Name, r.Paths.ComponentBinary(c.Name), strings.Join(c.Args, " \\\n    "))
	}
	return nil
}

// Start launches the detached supervisor of the root, or notes that it already runs.
func (Local) Start(ctx context.Context, r *Run) error {
	cps := components.ControlPlane(r.Cfg, r.Paths)
	if r.files().DryRun() {
		fmt.Fprintf(r.Log, "[dryrun] Would start the local supervisor for %s\n", componentNames(cps))
		return nil
	}
	// The supervisor and the components run from the component program: this program when it is
	// the monolith, else the one it carries, installed under the root. The supervisor shares the
	// components' pages that way (a front would be a second, unshared binary in memory).
	exe, err := componentProgram(r)
	if err != nil {
		return err
	}
	spec := SupervisorSpec(r.Cfg, r.Paths, cps, exe)
	fmt.Fprintf(r.Log, "[control-plane] Starting %s under the local supervisor (logs in %s)\n", componentNames(cps), r.Paths.LogDir())
	pid, err := supervisor.Host{Log: r.Log, Files: r.files()}.Start(r.Paths, spec, exe)
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

// Prepare begins installing the component program under the root (see Start), so that the copy
// of its 200 MB overlaps init's certs and kubeconfig phases instead of delaying the supervisor.
// init calls it once the pre-flight checks have passed: bad input still leaves nothing behind.
func (Local) Prepare(r *Run) {
	if r.program != nil {
		return
	}
	p := &pendingProgram{binDir: r.Paths.BinDir(), began: time.Now(), done: make(chan struct{})}
	// Its lines are kept until Start, where they were printed before and where a reader of the
	// log expects them, rather than cut into the certs phase's lines.
	log := logx.New(&p.log, logx.From(r.Log).Level())
	install := r.installer()
	go func() {
		defer close(p.done)
		p.exe, p.err = install(p.binDir, log)
		p.took = time.Since(p.began)
	}()
	r.program = p
}

// pendingProgram is an install of the component program begun by Prepare.
type pendingProgram struct {
	binDir string
	began  time.Time
	done   chan struct{}
	// Set before done is closed:
	exe  string
	err  error
	took time.Duration
	log  bytes.Buffer

	printed bool
}

// result waits for the install and, the first time, prints its log lines to log.
func (p *pendingProgram) result(log io.Writer) (string, error) {
	if p.printed {
		<-p.done
		return p.exe, p.err
	}
	p.printed = true
	wait := logx.Wait(log, "the install of the component program, begun after the pre-flight checks")
	<-p.done
	if log != nil {
		log.Write(p.log.Bytes())
		logx.Printf(log, logx.LevelFiles, "the install of the component program took %s", p.took.Round(time.Millisecond))
	}
	wait(p.err)
	return p.exe, p.err
}

// componentProgram is the program local mode starts the supervisor and the components with: the
// one Prepare installed for this root, or installed now.
func componentProgram(r *Run) (string, error) {
	if p := r.program; p != nil && p.binDir == r.Paths.BinDir() {
		return p.result(r.Log)
	}
	return r.installer()(r.Paths.BinDir(), r.Log)
}

func (r *Run) installer() func(string, io.Writer) (string, error) {
	if r.install != nil {
		return r.install
	}
	return progstore.ForRoot
}

func (m Local) KubeletStart(_ context.Context, r *Run) error { return skipKubelet(r, m.Name()) }

// LogHint: the supervisor writes each component's output to its log file.
func (Local) LogHint(p paths.Paths, component string) (string, string) {
	return p.ComponentLog(component), ""
}

// FindRunning: the root's supervisor, and whether it reports every component healthy.
func (Local) FindRunning(p paths.Paths) Running {
	running, pid := supervisor.Running(p)
	if !running {
		return Running{}
	}
	r := Running{Found: true, What: fmt.Sprintf("supervisor pid %d", pid)}
	if pid == 0 {
		r.What = "its supervisor is starting"
	}
	rep, err := supervisor.Status(p, supervisor.CheckHealth)
	r.Healthy = err == nil && rep.Running() && rep.Healthy()
	return r
}

// Auto: local mode runs anywhere; auto takes it where neither systemd nor a kubelet can run the
// control plane (the other modes are asked first).
func (Local) Auto(_ Host, p paths.Paths) (bool, string) {
	if !p.IsRealRoot() {
		return true, fmt.Sprintf("the root dir %s is not /, and neither systemd nor a kubelet reads files under a root dir", p.Root())
	}
	return true, "systemd is not PID 1, so neither systemd units nor a kubelet can be started here"
}

// Discover reads the supervisor's spec. The root is local mode's also without one when the
// component links or the supervisor's pid file are there: an init killed before the spec was
// written, or a supervisor killed with SIGKILL.
func (m Local) Discover(p paths.Paths) (Installed, bool) {
	in := Installed{Mode: m.Name()}
	spec, err := supervisor.ReadSpec(p)
	switch {
	case err == nil:
		for _, c := range spec.Components {
			in.Components = append(in.Components, Found{Name: c.Name, Argv: append([]string{c.Path}, c.Args...), Source: supervisor.SpecPath(p)})
		}
		return in, true
	case !errors.Is(err, supervisor.ErrNotStarted):
		in.Warnings = append(in.Warnings, err.Error())
		return in, true
	}
	return in, exists(p.BinDir()) || exists(supervisor.SupervisorPidFile(p))
}

// Stop stops the supervisor, which stops its components in reverse start order.
func (Local) Stop(_ context.Context, _ Installed, s Stopper) error { return s.StopLocal() }

// Status is the supervisor's report: pids, uptimes, restarts and each component's health.
func (m Local) Status(_ context.Context, p paths.Paths) (StatusReport, error) {
	rep, err := supervisor.Status(p, nil)
	if errors.Is(err, supervisor.ErrNotStarted) {
		return nil, ErrNothingInstalled
	}
	if err != nil {
		return nil, err
	}
	rep.Mode = m.Name()
	return rep, nil
}

// Source: none; the supervisor's spec is kubestrap's own record, and the processes it starts are
// what show-apiserver-options reads in local mode.
func (Local) Source(paths.Paths, string) (Source, bool) { return Source{}, false }

// SupervisorSpec describes the local-mode control plane for the supervisor: each component's
// argument list exactly as the argument builder made it (the same list a static pod manifest or a
// systemd unit gets), started through its own symlink to the kubestrap executable.
func SupervisorSpec(cfg *config.Config, p paths.Paths, cps []components.Component, exe string) supervisor.Spec {
	s := cfg.Kubestrap.Supervisor
	spec := supervisor.Spec{
		Root:        p.Root(),
		Executable:  exe,
		LogMaxBytes: int64(s.LogMaxSizeMB) << 20,
		LogMaxFiles: int(s.LogMaxFiles),
	}
	if s.MaxRestartBackoff != nil {
		spec.MaxBackoff = s.MaxRestartBackoff.Duration
	}
	if s.StopTimeout != nil {
		spec.StopTimeout = s.StopTimeout.Duration
	}
	for _, c := range cps {
		spec.Components = append(spec.Components, supervisor.ComponentSpec{
			Name:      c.Name,
			Path:      p.ComponentBinary(c.Name),
			Args:      c.Args,
			HealthURL: c.HealthURL(),
		})
	}
	return spec
}

// exists reports whether path is there (a dangling link counts; an unreadable parent too).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
