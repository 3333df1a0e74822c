package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/procfs"
)

// These tests run real processes: the test binary itself as supervisor and as fake components
// (see TestMain). They are skipped with -short.

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
}

func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// fake is a component run by the test binary under name, with the behaviour env selects.
func fake(p paths.Paths, name, events string, env ...string) ComponentSpec {
	return ComponentSpec{
		Name: name,
		Path: p.ComponentBinary(name),
		Args: []string{"--name=" + name, "--root=" + p.Root()},
		Env:  append([]string{envFake + "=1", envEvents + "=" + events}, env...),
	}
}

// serving makes c serve /healthz on a free port after delay and gives it that HealthURL.
func serving(t *testing.T, c ComponentSpec, delay time.Duration) ComponentSpec {
	addr := freeAddr(t)
	c.Env = append(c.Env, envAddr+"="+addr, envReadyDelay+"="+delay.String())
	c.HealthURL = "http://" + addr + "/healthz"
	return c
}

func names(spec Spec) []string {
	var out []string
	for _, c := range spec.Components {
		out = append(out, c.Name)
	}
	return out
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

func readEvents(path string) []string {
	data, _ := os.ReadFile(path)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func alive(pid int) bool { return procfs.FS{}.Alive(pid) }

func readStatusDoc(t *testing.T, p paths.Paths) statusDoc {
	t.Helper()
	var doc statusDoc
	data, err := os.ReadFile(statusFile(p))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// pidOf waits for the pid file of name and returns its live pid.
func pidOf(t *testing.T, p paths.Paths, name string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "a live pid in "+p.PidFile(name), func() bool {
		pid, _ = readPidFile(p.PidFile(name))
		return pid != 0 && alive(pid)
	})
	return pid
}

// killLeftovers fails the test for, and kills, any process of the root still running.
func killLeftovers(t *testing.T, p paths.Paths) {
	t.Helper()
	pids, err := Host{}.withDefaults().scan(p)
	if err != nil {
		t.Error(err)
	}
	for _, pid := range pids {
		argv, _ := procfs.FS{}.Cmdline(pid)
		t.Errorf("left running: pid %d %q", pid, argv)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// inProcess is Run in a goroutine of the test, for tests that watch its internals.
type inProcess struct {
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func runInProcess(t *testing.T, p paths.Paths, spec Spec, deps Deps) *inProcess {
	t.Helper()
	if err := LinkComponents(fsutil.NewDisk(nil), p, names(spec), testExe(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &inProcess{log: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	deps.Log = r.log
	go func() { r.done <- Run(ctx, p, spec, deps) }()
	t.Cleanup(func() {
		r.stop(t)
		killLeftovers(t, p)
		if t.Failed() {
			t.Logf("supervisor log:\n%s", r.log)
		}
	})
	return r
}

func (r *inProcess) stop(t *testing.T) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(15 * time.Second):
			r.err = errors.New("Run did not return within 15s of cancellation")
		}
	})
	return r.err
}

func TestRunStartOrderHealthGatingAndReverseStop(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	events := filepath.Join(t.TempDir(), "events")
	spec := Spec{
		Components: []ComponentSpec{
			// etcd never becomes ready while the test runs: the apiserver starting at all shows
			// that the supervisor does not wait for etcd, whatever the machine's load (the order
			// in which two just-started processes get to run is the scheduler's, not ours).
			serving(t, fake(p, "etcd", events), time.Hour),
			serving(t, fake(p, "kube-apiserver", events), 300*time.Millisecond),
			// Ignores SIGTERM: the supervisor must SIGKILL it after StopTimeout.
			fake(p, "kube-controller-manager", events, envIgnoreTerm+"=1"),
			fake(p, "kube-scheduler", events),
		},
		StopTimeout: 300 * time.Millisecond,
	}
	r := runInProcess(t, p, spec, Deps{})
	eventually(t, 10*time.Second, "all four components to start", func() bool {
		ev := readEvents(events)
		return slices.Contains(ev, "start kube-controller-manager") && slices.Contains(ev, "start kube-scheduler")
	})
	// etcd and the apiserver start at once (the apiserver retries etcd itself); the
	// controller-manager and scheduler only once the apiserver is ready. The order in which the
	// supervisor started them is checked from its log below.
	ev := readEvents(events)
	at := func(e string) int { return slices.Index(ev, e) }
	if at("start etcd") < 0 || at("start kube-apiserver") < 0 || at("ready etcd") >= 0 ||
		at("ready kube-apiserver") > at("start kube-controller-manager") || at("ready kube-apiserver") > at("start kube-scheduler") {
		t.Errorf("start events %q: want etcd and kube-apiserver started without etcd being ready, the other two after kube-apiserver is ready", ev)
	}

	var started []string
	for _, m := range regexp.MustCompile(`started (\S+) \(pid`).FindAllStringSubmatch(r.log.String(), -1) {
		started = append(started, m[1])
	}
	if want := names(spec); !slices.Equal(started, want) {
		t.Errorf("started %q, want the order given %q", started, want)
	}

	pids := map[string]int{}
	for _, c := range spec.Components {
		pid := pidOf(t, p, c.Name)
		pids[c.Name] = pid
		// ps and pgrep must see the component's own name and flags.
		argv, _ := procfs.FS{}.Cmdline(pid)
		if want := append([]string{c.Path}, c.Args...); !slices.Equal(argv, want) {
			t.Errorf("%s runs as %q, want %q", c.Name, argv, want)
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if want := c.Name[:min(len(c.Name), 15)]; strings.TrimSpace(string(comm)) != want {
			t.Errorf("%s has comm %q, want %q", c.Name, comm, want)
		}
		// Same process group as the supervisor, and bound to die with it.
		if pgid, _ := syscall.Getpgid(pid); pgid != syscall.Getpgrp() {
			t.Errorf("%s is in process group %d, want the supervisor's %d", c.Name, pgid, syscall.Getpgrp())
		}
	}
	eventually(t, 5*time.Second, "status.json to show every component running", func() bool {
		doc := readStatusDoc(t, p)
		for i, c := range doc.Components {
			if c.State != StateRunning || c.PID != pids[c.Name] || c.StartedAt.IsZero() || c.Name != spec.Components[i].Name {
				return false
			}
		}
		return len(doc.Components) == 4 && doc.Supervisor.PID == os.Getpid()
	})
	if pid, _ := readPidFile(p.PidFile("supervisor")); pid != os.Getpid() {
		t.Errorf("supervisor.pid holds %d, want %d", pid, os.Getpid())
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("Run returned %v after cancellation, want nil", err)
	}
	var terms []string
	for _, e := range readEvents(events) {
		if strings.HasPrefix(e, "term ") {
			terms = append(terms, strings.TrimPrefix(e, "term "))
		}
	}
	if want := []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"}; !slices.Equal(terms, want) {
		t.Errorf("SIGTERM order %q, want reverse start order %q", terms, want)
	}
	if !regexp.MustCompile(`kube-controller-manager \(pid \d+\) did not stop within 300ms: killing it`).MatchString(r.log.String()) {
		t.Errorf("the log does not tell of the SIGKILL:\n%s", r.log)
	}
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs after Run returned", name, pid)
		}
	}
	assertNoRunFiles(t, p)
}

// fastClock records restart delays and waits only a few milliseconds for each.
type fastClock struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (c *fastClock) Now() time.Time { return time.Now() }

func (c *fastClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	return time.After(20 * time.Millisecond)
}

func TestRunRestartsKilledComponentWithBackoff(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	events := filepath.Join(t.TempDir(), "events")
	clock := &fastClock{}
	r := runInProcess(t, p, Spec{Components: []ComponentSpec{fake(p, "kube-apiserver", events)}}, Deps{Clock: clock})

	pid := pidOf(t, p, "kube-apiserver")
	for restart := 1; restart <= 2; restart++ {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		old := pid
		eventually(t, 10*time.Second, "a restarted kube-apiserver", func() bool {
			pid, _ = readPidFile(p.PidFile("kube-apiserver"))
			return pid != 0 && pid != old && alive(pid)
		})
		eventually(t, 5*time.Second, "status.json to count the restart", func() bool {
			c := readStatusDoc(t, p).Components[0]
			return c.Restarts == restart && c.PID == pid && c.LastExit == "signal: killed" && c.State == StateRunning
		})
	}
	log := r.log.String()
	for _, want := range []string{
		`kube-apiserver \(pid \d+\) exited after \S+: signal: killed; restart #1 in 1s`,
		`kube-apiserver \(pid \d+\) exited after \S+: signal: killed; restart #2 in 2s`,
	} {
		if !regexp.MustCompile(want).MatchString(log) {
			t.Errorf("the supervisor log lacks %q:\n%s", want, log)
		}
	}
	clock.mu.Lock()
	delays := slices.Clone(clock.delays)
	clock.mu.Unlock()
	if want := []time.Duration{time.Second, 2 * time.Second}; !slices.Equal(delays, want) {
		t.Errorf("restart delays %v, want %v", delays, want)
	}
}

func TestRunCrashLoopBackoffIsCapped(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	events := filepath.Join(t.TempDir(), "events")
	clock := &fastClock{}
	spec := Spec{
		Components: []ComponentSpec{fake(p, "kube-scheduler", events, envExit+"=3")},
		MaxBackoff: 4 * time.Second,
	}
	r := runInProcess(t, p, spec, Deps{Clock: clock})
	eventually(t, 10*time.Second, "five restarts", func() bool {
		return strings.Contains(r.log.String(), "restart #5 ")
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	clock.mu.Lock()
	delays := clock.delays[:5]
	clock.mu.Unlock()
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(delays, want) {
		t.Errorf("restart delays %v, want %v", delays, want)
	}
	if !regexp.MustCompile(`kube-scheduler \(pid \d+\) exited after \S+: exit status 3; restart #3 in 4s`).MatchString(r.log.String()) {
		t.Errorf("the supervisor log lacks the exit status:\n%s", r.log)
	}
	// The component's own output went to its log.
	if data, _ := os.ReadFile(p.ComponentLog("kube-scheduler")); !strings.Contains(string(data), "kube-scheduler: exiting with 3") {
		t.Errorf("component log lacks the component's stderr:\n%s", data)
	}
}

func TestRunRotatesComponentLogs(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	events := filepath.Join(t.TempDir(), "events")
	spec := Spec{
		Components:  []ComponentSpec{fake(p, "etcd", events, envSpew+"=20000")},
		LogMaxBytes: 4096,
		LogMaxFiles: 2,
	}
	r := runInProcess(t, p, spec, Deps{})
	eventually(t, 10*time.Second, "the component to write its output", func() bool {
		return slices.Contains(readEvents(events), "spewed etcd")
	})
	// Stopping drains the pipe into the log.
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	log := p.ComponentLog("etcd")
	for _, f := range []string{log, log + ".1", log + ".2"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if fi.Size() > 4096 {
			t.Errorf("%s is %d bytes, over the 4096 cap", f, fi.Size())
		}
		// Whole 100-byte lines, as many as fit.
		if f != log && fi.Size() != 4000 {
			t.Errorf("rotated %s has %d bytes, want 4000 (40 whole lines)", f, fi.Size())
		}
	}
	if _, err := os.Stat(log + ".3"); err == nil {
		t.Errorf("%s.3 exists; only 2 rotated files are kept", log)
	}
}

// startDetached runs Start from a separate process that exits right away, as init does.
func startDetached(t *testing.T, p paths.Paths, spec Spec) (supervisorPID, starterPID int) {
	t.Helper()
	if err := WriteSpec(fsutil.NewDisk(nil), p, spec); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testExe(t))
	cmd.Env = append(os.Environ(), envStarter+"="+p.Root())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("starter: %v\n%s", err, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("starter printed %q", out)
	}
	return pid, cmd.Process.Pid
}

func stopOnCleanup(t *testing.T, p paths.Paths) {
	t.Cleanup(func() {
		if _, err := Stop(p, 5*time.Second); err != nil {
			t.Error(err)
		}
		killLeftovers(t, p)
		if t.Failed() {
			log, _ := os.ReadFile(supervisorLog(p))
			t.Logf("supervisor log:\n%s", log)
		}
	})
}

func TestStartDetachesStatusAndStop(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	events := filepath.Join(t.TempDir(), "events")
	spec := Spec{
		Components: []ComponentSpec{
			serving(t, fake(p, "etcd", events), 0),
			serving(t, fake(p, "kube-apiserver", events), 0),
			fake(p, "kube-controller-manager", events),
			fake(p, "kube-scheduler", events),
		},
		StopTimeout: 2 * time.Second,
	}
	stopOnCleanup(t, p)
	sup, starter := startDetached(t, p, spec)

	// The starter is gone; the supervisor lives on in a session of its own.
	if alive(starter) {
		t.Errorf("the starter (pid %d) still runs", starter)
	}
	st, err := procfs.FS{}.Stat(sup)
	if err != nil || !alive(sup) {
		t.Fatalf("the supervisor (pid %d) does not survive its starter: %v", sup, err)
	}
	if st.Session != sup {
		t.Errorf("the supervisor is in session %d, want its own (%d)", st.Session, sup)
	}
	if st.PPID == starter {
		t.Errorf("the supervisor's parent is still the starter")
	}
	if argv, _ := (procfs.FS{}).Cmdline(sup); !IsSupervisorOf(argv, p.Root()) {
		t.Errorf("the supervisor runs as %q", argv)
	}

	comps := map[string]int{}
	for _, name := range names(spec) {
		comps[name] = pidOf(t, p, name)
	}
	var report Report
	eventually(t, 10*time.Second, "a healthy status", func() bool {
		report, err = Status(p, nil)
		return err == nil && report.Healthy()
	})
	if !report.Running() || report.SupervisorPID != sup {
		t.Errorf("Status = %+v", report)
	}
	for _, c := range report.Components {
		if c.PID != comps[c.Name] || !c.Healthy {
			t.Errorf("Status of %s = %+v, want pid %d and healthy", c.Name, c, comps[c.Name])
		}
	}

	// A second start finds the first.
	pid, err := Start(p, spec, testExe(t))
	if !errors.Is(err, ErrAlreadyRunning) || pid != sup {
		t.Errorf("second Start = %d, %v; want %d, ErrAlreadyRunning", pid, err, sup)
	}

	stopped, err := Stop(p, 10*time.Second)
	if err != nil || !stopped {
		t.Fatalf("Stop = %v, %v; want true, nil", stopped, err)
	}
	for name, pid := range comps {
		if alive(pid) {
			t.Errorf("%s (pid %d) runs after Stop", name, pid)
		}
	}
	if alive(sup) {
		t.Errorf("the supervisor runs after Stop")
	}
	assertNoRunFiles(t, p)
	if stopped, err := Stop(p, time.Second); err != nil || stopped {
		t.Errorf("second Stop = %v, %v; want false, nil", stopped, err)
	}
	if _, err := Status(p, nil); err != nil {
		t.Errorf("Status after Stop: %v; want a report of a stopped control plane", err)
	}
}

func TestComponentsDieWithKilledSupervisor(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	events := filepath.Join(t.TempDir(), "events")
	spec := Spec{Components: []ComponentSpec{fake(p, "etcd", events), fake(p, "kube-apiserver", events)}}
	stopOnCleanup(t, p)
	sup, err := Start(p, spec, testExe(t))
	if err != nil {
		t.Fatal(err)
	}
	etcd, apiserver := pidOf(t, p, "etcd"), pidOf(t, p, "kube-apiserver")
	if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the components to die with the supervisor", func() bool {
		return !alive(sup) && !alive(etcd) && !alive(apiserver)
	})
	// Nothing runs; Stop says so and clears what the dead supervisor left.
	if stopped, err := Stop(p, time.Second); err != nil || stopped {
		t.Errorf("Stop = %v, %v; want false, nil", stopped, err)
	}
	assertNoRunFiles(t, p)
	report, err := Status(p, nil)
	if err != nil || report.Running() || len(report.Problems()) != 3 {
		t.Errorf("Status = %+v, %v; want nothing running", report, err)
	}
}

func TestStartReportsEarlyExit(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	os.MkdirAll(p.RunDir(), 0o755)
	// Hold the root's lock as a supervisor would, but without a pid file: the new supervisor
	// fails and Start must say why.
	unlock, err := lockRoot(p)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = Start(p, Spec{Components: []ComponentSpec{fake(p, "etcd", "/dev/null")}}, testExe(t))
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "already running") {
		t.Errorf("Start beside a held lock: %v; want the early exit with the log's tail", err)
	}
	killLeftovers(t, p)
}

func TestStopKillsOrphansFoundByCmdline(t *testing.T) {
	skipShort(t)
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	p := paths.MustUnder(t.TempDir())
	if err := LinkComponents(fsutil.NewDisk(nil), p, []string{"etcd"}, sleep); err != nil {
		t.Fatal(err)
	}
	// An etcd nobody supervises, in a session of its own like the orphan of a detached
	// supervisor, and a bystander that only mentions the bin dir.
	orphan := &exec.Cmd{Path: p.ComponentBinary("etcd"), Args: []string{p.ComponentBinary("etcd"), "60"},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	bystander := exec.Command("sh", "-c", "sleep 60; : "+p.ComponentBinary("etcd"))
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, c := range []*exec.Cmd{orphan, bystander} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		reaped := make(chan struct{})
		go func() { c.Wait(); close(reaped) }()
		t.Cleanup(func() {
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-reaped
		})
	}
	stopped, err := Stop(p, 2*time.Second)
	if err != nil || !stopped {
		t.Fatalf("Stop = %v, %v; want true, nil", stopped, err)
	}
	if alive(orphan.Process.Pid) {
		t.Error("the orphaned etcd runs after Stop")
	}
	if !alive(bystander.Process.Pid) {
		t.Error("Stop killed a process that merely mentions the bin dir")
	}
}

func TestRunKillsOrphansOfEarlierSupervisor(t *testing.T) {
	skipShort(t)
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	p := paths.MustUnder(t.TempDir())
	if err := LinkComponents(fsutil.NewDisk(nil), p, []string{"etcd"}, sleep); err != nil {
		t.Fatal(err)
	}
	orphan := &exec.Cmd{Path: p.ComponentBinary("etcd"), Args: []string{p.ComponentBinary("etcd"), "60"}}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { orphan.Wait(); close(reaped) }()
	t.Cleanup(func() { orphan.Process.Kill(); <-reaped })

	r := runInProcess(t, p, Spec{Components: []ComponentSpec{fake(p, "etcd", "/dev/null")}}, Deps{})
	pid := pidOf(t, p, "etcd")
	select {
	case <-reaped:
	case <-time.After(5 * time.Second):
		t.Fatal("the orphaned etcd still runs after a new supervisor started")
	}
	if pid == orphan.Process.Pid || !strings.Contains(r.log.String(), "killing orphaned") {
		t.Errorf("new etcd pid %d, orphan %d; log:\n%s", pid, orphan.Process.Pid, r.log)
	}
}
