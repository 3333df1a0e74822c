package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/procfs"
)

const (
	// healthPollInterval is how often a gating component's health is polled during start-up.
	healthPollInterval = 25 * time.Millisecond
	// outputWaitDelay bounds how long a component's exit waits for its output pipe to drain; a
	// grandchild holding the pipe open must not stall the restart.
	outputWaitDelay = 2 * time.Second
)

// Component states in status.json.
const (
	StateRunning = "running"
	StateBackoff = "backoff" // exited, waiting to be restarted
	StateStopped = "stopped"
)

// Deps are Run's boundaries; the zero value is the real system.
type Deps struct {
	// Log receives the supervisor's own lines (starts, exits, restarts, stop). The detached
	// supervisor's stderr is <LogDir>/supervisor.log. Default: os.Stderr.
	Log io.Writer
	// Clock times restart backoff and uptimes.
	Clock Clock
	// Health gates the start of the components after the apiserver (see gatesNext).
	Health HealthChecker
	// Proc is used to find orphans of an earlier supervisor of the same root.
	Proc Proc
}

func (d Deps) withDefaults() Deps {
	if d.Log == nil {
		d.Log = os.Stderr
	}
	if d.Clock == nil {
		d.Clock = realClock{}
	}
	if d.Health == nil {
		d.Health = CheckHealth
	}
	if d.Proc == nil {
		d.Proc = procfs.FS{}
	}
	return d
}

// statusDoc is <RunDir>/status.json, rewritten on every change.
type statusDoc struct {
	Supervisor supervisorRecord  `json:"supervisor"`
	Components []componentRecord `json:"components"`
}

type supervisorRecord struct {
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
}

type componentRecord struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	PID        int       `json:"pid,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	Restarts   int       `json:"restarts"`
	LastExit   string    `json:"lastExit,omitempty"`
	LastExitAt time.Time `json:"lastExitAt,omitzero"`
}

// Run supervises spec's components until ctx ends, then stops them in reverse order and returns
// nil. It is the body of the detached `kubestrap supervise` process, and refuses to run beside
// another supervisor of the same root (ErrAlreadyRunning).
func Run(ctx context.Context, p paths.Paths, spec Spec, deps Deps) error {
	spec = spec.withDefaults(p)
	if err := spec.validate(p); err != nil {
		return err
	}
	deps = deps.withDefaults()
	for _, dir := range []string{p.RunDir(), p.LogDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	unlock, err := lockRoot(p)
	if err != nil {
		return err
	}
	defer unlock()
	if err := relink(p, spec, deps.Log); err != nil {
		return err
	}

	s := &supervisor{p: p, spec: spec, deps: deps, clock: deps.Clock}
	s.started = s.clock.Now()
	defer s.closeLogs()
	if err := s.openLogs(); err != nil {
		return err
	}
	s.killOrphans()
	if err := writePidFile(p.PidFile(supervisorName), os.Getpid(), deps.Log); err != nil {
		return err
	}
	defer s.cleanup()
	s.logf("supervisor (pid %d) starting %d components under %s", os.Getpid(), len(s.children), p.Root())
	s.writeStatus()

	s.launcher = startLauncher()
	defer s.launcher.close()
	s.startAll(ctx)
	<-ctx.Done()
	s.logf("stopping: %v", context.Cause(ctx))
	s.stopAll()
	s.logf("supervisor stopped")
	return nil
}

// lockRoot takes <RunDir>/supervisor.lock for the life of the supervisor. The kernel drops the
// lock however the process ends, so unlike a pid file it can neither go stale nor be won twice.
func lockRoot(p paths.Paths) (func(), error) {
	f, err := os.OpenFile(lockFile(p), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid, _ := readPidFile(p.PidFile(supervisorName)); pid != 0 {
				return nil, fmt.Errorf("%w for %s (pid %d)", ErrAlreadyRunning, p.Root(), pid)
			}
			return nil, fmt.Errorf("%w for %s (%s is locked)", ErrAlreadyRunning, p.Root(), lockFile(p))
		}
		return nil, fmt.Errorf("locking %s: %w", lockFile(p), err)
	}
	return func() {
		// Remove while still holding the lock: a newcomer that opened the old file fails its
		// non-blocking lock rather than sharing the root with us.
		os.Remove(lockFile(p))
		f.Close()
	}, nil
}

// relink restores component links that went missing since Start made them: `kubestrap
// supervise` may also be run again by hand, long after init.
func relink(p paths.Paths, spec Spec, log io.Writer) error {
	if spec.Executable == "" {
		return nil
	}
	var missing []string
	for _, c := range spec.Components {
		if _, err := os.Lstat(c.Path); errors.Is(err, os.ErrNotExist) && c.Path == p.ComponentBinary(c.Name) {
			missing = append(missing, c.Name)
		}
	}
	// The running supervisor mends its own links: no command's writer is involved.
	return LinkComponents(fsutil.NewDisk(log), p, missing, spec.Executable)
}

type supervisor struct {
	p        paths.Paths
	spec     Spec
	deps     Deps
	clock    Clock
	started  time.Time
	children []*child
	launcher *launcher

	logMu    sync.Mutex
	statusMu sync.Mutex
	finished bool
}

// child is one component and its monitor goroutine.
type child struct {
	spec    ComponentSpec
	out     *lossyWriter
	bo      backoff
	started bool // monitor launched; only touched by Run's goroutine

	stopCh   chan struct{} // closed when the component is to stop for good
	launched chan struct{} // closed after the first attempt to start the process
	done     chan struct{} // closed when the monitor has returned

	mu       sync.Mutex
	stopping bool
	proc     *os.Process
	rec      componentRecord
}

func (s *supervisor) openLogs() error {
	for _, cs := range s.spec.Components {
		w, err := NewRotatingWriter(s.p.ComponentLog(cs.Name), s.spec.LogMaxBytes, s.spec.LogMaxFiles)
		if err != nil {
			return fmt.Errorf("opening log of %s: %w", cs.Name, err)
		}
		name := cs.Name
		s.children = append(s.children, &child{
			spec: cs,
			out: &lossyWriter{w: w, onErr: func(err error) {
				s.logf("%s: log write failed, dropping output until it works again: %v", name, err)
			}},
			bo:       backoff{base: initialBackoff, limit: s.spec.MaxBackoff, reset: backoffReset},
			stopCh:   make(chan struct{}),
			launched: make(chan struct{}),
			done:     make(chan struct{}),
			rec:      componentRecord{Name: cs.Name, State: StateStopped},
		})
	}
	return nil
}

func (s *supervisor) closeLogs() {
	for _, c := range s.children {
		c.out.w.Close()
	}
}

// killOrphans kills processes started through this root's component links that no supervisor
// owns any more (we hold the root's lock, so none can): a leftover etcd would otherwise keep the
// new one off its ports forever.
func (s *supervisor) killOrphans() {
	ours := map[string]bool{}
	for _, c := range s.spec.Components {
		ours[c.Path] = true
	}
	h := Host{Proc: s.deps.Proc}.withDefaults()
	pids, err := h.scan(s.p)
	if err != nil {
		s.logf("looking for orphaned components: %v", err)
		return
	}
	var killed []int
	for _, pid := range pids {
		argv, err := h.Proc.Cmdline(pid)
		if err != nil || len(argv) == 0 || !ours[argv[0]] {
			continue
		}
		s.logf("killing orphaned %s (pid %d) left by an earlier supervisor", argv[0], pid)
		if err := h.signal(pid, syscall.SIGKILL); err != nil {
			s.logf("%v", err)
			continue
		}
		killed = append(killed, pid)
	}
	// Let them release their ports before their successors start.
	if left := h.waitGone(func() []int { return h.alive(killed) }, time.Now().Add(killWait)); len(left) > 0 {
		s.logf("orphans still running after SIGKILL: %v", left)
	}
}

func (s *supervisor) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.deps.Log, "%s [supervisor] %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// startAll starts the components in order. Only after a component in gatesNext (the apiserver)
// does it wait for that component's health before starting the next, because the
// controller-manager and scheduler exit when the apiserver does not answer; the apiserver itself
// starts right after etcd and retries its storage until etcd serves. The components after the
// apiserver start together.
func (s *supervisor) startAll(ctx context.Context) {
	for i, c := range s.children {
		if ctx.Err() != nil {
			return
		}
		c.started = true
		go s.monitor(c)
		// Even without a health gate, the processes start in the order given.
		select {
		case <-c.launched:
		case <-c.done:
		}
		if i+1 < len(s.children) && gatesNext[c.spec.Name] && c.spec.HealthURL != "" {
			s.gate(ctx, c)
		}
	}
}

func (s *supervisor) gate(ctx context.Context, c *child) {
	wctx, cancel := context.WithTimeout(ctx, s.spec.StartTimeout)
	defer cancel()
	begin := time.Now()
	err := waitHealthy(wctx, s.deps.Health, c.spec.HealthURL, healthPollInterval)
	switch {
	case err == nil:
		s.logf("%s is healthy after %s", c.spec.Name, time.Since(begin).Round(time.Millisecond))
	case ctx.Err() != nil:
	default:
		s.logf("%s is not healthy after %s, starting the next component anyway: %v", c.spec.Name, s.spec.StartTimeout, err)
	}
}

// command builds a fresh exec.Cmd for c (a Cmd runs once). argv[0] is the component's link so
// that ps shows "kube-apiserver --flags..." under the root's bin dir.
func (s *supervisor) command(c *child) *exec.Cmd {
	return &exec.Cmd{
		Path:   c.spec.Path,
		Args:   append([]string{c.spec.Path}, c.spec.Args...),
		Env:    append(os.Environ(), c.spec.Env...),
		Dir:    "/",
		Stdout: c.out,
		Stderr: c.out, // the same writer: exec makes one pipe for both and one copier
		SysProcAttr: &syscall.SysProcAttr{
			// Die with the supervisor, however it dies: local mode never leaves a component
			// running that nothing watches.
			Pdeathsig: syscall.SIGKILL,
		},
		WaitDelay: outputWaitDelay,
	}
}

// monitor runs c until it is stopped, restarting it with backoff whenever it exits.
func (s *supervisor) monitor(c *child) {
	defer close(c.done)
	name := c.spec.Name
	for first := true; ; first = false {
		cmd := s.command(c)
		c.mu.Lock()
		if c.stopping {
			c.mu.Unlock()
			return
		}
		if !first {
			c.rec.Restarts++
		}
		// Started under c.mu so that stop either sees the process or prevents it.
		err := s.launcher.start(cmd)
		began := s.clock.Now()
		if err == nil {
			c.proc = cmd.Process
			c.rec.State, c.rec.PID, c.rec.StartedAt = StateRunning, cmd.Process.Pid, began
		}
		c.mu.Unlock()

		pid := 0
		if err == nil {
			pid = cmd.Process.Pid
			s.logf("started %s (pid %d)", name, pid)
			if err := writePidFile(s.p.PidFile(name), pid, s.deps.Log); err != nil {
				s.logf("%s: %v", name, err)
			}
			s.writeStatus()
		}
		if first {
			close(c.launched)
		}

		var exit string
		var uptime time.Duration
		if err != nil {
			exit = "start failed: " + err.Error()
		} else {
			werr := cmd.Wait()
			uptime = s.clock.Now().Sub(began)
			exit = exitDescription(cmd.ProcessState, werr)
			if err := removeIfExists(s.p.PidFile(name), s.deps.Log); err != nil {
				s.logf("%s: %v", name, err)
			}
		}

		c.mu.Lock()
		c.proc = nil
		c.rec.PID = 0
		c.rec.LastExit, c.rec.LastExitAt = exit, s.clock.Now()
		stopping := c.stopping
		var delay time.Duration
		if stopping {
			c.rec.State = StateStopped
		} else {
			c.rec.State = StateBackoff
			delay = c.bo.next(uptime)
		}
		restart := c.rec.Restarts + 1
		c.mu.Unlock()

		if stopping {
			s.logf("%s (pid %d) stopped: %s", name, pid, exit)
			s.writeStatus()
			return
		}
		if pid != 0 {
			s.logf("%s (pid %d) exited after %s: %s; restart #%d in %s", name, pid, uptime.Round(time.Millisecond), exit, restart, delay)
		} else {
			s.logf("%s: %s; restart #%d in %s", name, exit, restart, delay)
		}
		s.writeStatus()
		select {
		case <-s.clock.After(delay):
		case <-c.stopCh:
			c.mu.Lock()
			c.rec.State = StateStopped
			c.mu.Unlock()
			s.writeStatus()
			return
		}
	}
}

// exitDescription is "exit status 1", "signal: killed", ... for the log and status.
func exitDescription(ps *os.ProcessState, err error) string {
	if ps != nil {
		return ps.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exited"
}

// stopAll stops the started components in reverse start order, each completely before the next:
// the scheduler and controller-manager go before the apiserver they talk to, etcd goes last.
func (s *supervisor) stopAll() {
	for i := len(s.children) - 1; i >= 0; i-- {
		if c := s.children[i]; c.started {
			s.stopChild(c)
		}
	}
}

// stopChild sends SIGTERM, then SIGKILL after StopTimeout, and waits for the monitor to end.
func (s *supervisor) stopChild(c *child) {
	c.mu.Lock()
	if !c.stopping {
		c.stopping = true
		close(c.stopCh)
	}
	proc := c.proc
	c.mu.Unlock()
	if proc != nil {
		s.logf("stopping %s (pid %d)", c.spec.Name, proc.Pid)
		_ = proc.Signal(syscall.SIGTERM)
	}
	t := time.NewTimer(s.spec.StopTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	}
	c.mu.Lock()
	proc = c.proc
	c.mu.Unlock()
	if proc != nil {
		s.logf("%s (pid %d) did not stop within %s: killing it", c.spec.Name, proc.Pid, s.spec.StopTimeout)
		_ = proc.Signal(syscall.SIGKILL)
	}
	<-c.done
}

// writeStatus rewrites status.json from every component's current record.
func (s *supervisor) writeStatus() {
	doc := statusDoc{Supervisor: supervisorRecord{PID: os.Getpid(), StartedAt: s.started}}
	for _, c := range s.children {
		c.mu.Lock()
		doc.Components = append(doc.Components, c.rec)
		c.mu.Unlock()
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		s.logf("encoding status: %v", err)
		return
	}
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	if s.finished {
		return
	}
	if err := fsutil.WriteFileAtomic(statusFile(s.p), append(data, '\n'), 0o644, fsutil.Log(s.deps.Log)); err != nil {
		s.logf("%v", err)
	}
}

// cleanup removes what only means something while the supervisor runs.
func (s *supervisor) cleanup() {
	s.statusMu.Lock()
	s.finished = true
	s.statusMu.Unlock()
	files := []string{statusFile(s.p), s.p.PidFile(supervisorName)}
	for _, c := range s.spec.Components {
		files = append(files, s.p.PidFile(c.Name))
	}
	for _, f := range files {
		if err := removeIfExists(f, s.deps.Log); err != nil {
			s.logf("%v", err)
		}
	}
}

// launcher forks every component from one goroutine locked to its OS thread. Pdeathsig fires
// when the thread that forked the child exits, not the process: an ordinary goroutine's thread
// may be retired by the runtime under a live child, which would then be killed for nothing.
// The locked thread lives exactly as long as Run; when Run returns, the goroutine ends still
// locked, the runtime ends the thread with it, and any child that somehow outlived the orderly
// stop is killed.
type launcher struct {
	reqs chan launchRequest
}

type launchRequest struct {
	cmd *exec.Cmd
	err chan error
}

func startLauncher() *launcher {
	l := &launcher{reqs: make(chan launchRequest)}
	go func() {
		runtime.LockOSThread()
		for r := range l.reqs {
			r.err <- r.cmd.Start()
		}
	}()
	return l
}

func (l *launcher) start(cmd *exec.Cmd) error {
	r := launchRequest{cmd: cmd, err: make(chan error, 1)}
	l.reqs <- r
	return <-r.err
}

func (l *launcher) close() { close(l.reqs) }

// lossyWriter stands between a component's output pipe and its log. exec's copier stops at the
// first write error and closes the pipe, and the component would then die of SIGPIPE on its next
// log line: a full disk must cost log lines, never the control plane.
type lossyWriter struct {
	w      *RotatingWriter
	onErr  func(error)
	mu     sync.Mutex
	failed bool
}

func (l *lossyWriter) Write(b []byte) (int, error) {
	_, err := l.w.Write(b)
	l.mu.Lock()
	report := err != nil && !l.failed
	l.failed = err != nil
	l.mu.Unlock()
	if report {
		l.onErr(err)
	}
	return len(b), nil
}
