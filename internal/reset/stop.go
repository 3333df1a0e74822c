package reset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// Stop stops everything of the root, whichever run mode started it: each mode that left
// something under the root stops what it runs (runmode.Mode.Stop, through stopper below: systemd
// units stopped and disabled over D-Bus when systemd manages the root, static pods by removing
// their manifests and giving the kubelet time to stop them before it is stopped itself, the local
// supervisor with its components), then the kubelet of a joined node, and finally any process
// that still belongs to the root (see processFinder), with SIGTERM and then SIGKILL. It returns
// an error only when a process of the root survives SIGKILL.
func (r *Reset) Stop(ctx context.Context) error {
	finder := newProcessFinder(r.p, r.sys.Procs, r.sys.Self)
	procs, err := finder.find()
	if err != nil {
		return err
	}
	pods := r.podProcesses()
	start := time.Now()
	prefix := "[reset] Stopping"
	if r.o.DryRun {
		prefix = "[dryrun] Would stop"
	}
	for _, pr := range slices.Concat(procs, pods) {
		fmt.Fprintf(r.log, "%s process %s\n", prefix, pr)
	}
	r.changes += len(procs) + len(pods)

	// In the reverse of registration order: what systemd or the kubelet would restart goes
	// before the local supervisor, the one mode also found by its processes.
	st := &stopper{r: r, pods: pods}
	for i := len(r.layout.Modes) - 1; i >= 0; i-- {
		in := r.layout.Modes[i]
		m, err := runmode.Get(in.Mode)
		if err != nil {
			return err
		}
		if err := m.Stop(ctx, in, st); err != nil {
			return err
		}
	}
	if r.layout.KubeletUnit && !st.kubeletDone {
		r.stopUnits(ctx, []string{kubeletUnit})
		// A worker's pods: with its kubelet stopped nothing else would stop them.
		if endpoint := r.criEndpoint(); endpoint != "" && !r.o.DryRun {
			r.removePods(ctx, endpoint)
		}
	}
	if !st.localDone && slices.ContainsFunc(procs, func(p Process) bool { return p.Why == whySupervisor }) {
		// A supervisor of the root whose files are gone: stopped in order all the same.
		_ = st.StopLocal()
	}
	if r.o.DryRun {
		if len(procs)+len(pods) == 0 {
			fmt.Fprintf(r.log, "[reset] No process of %s is running\n", r.p.Root())
		}
		return nil
	}

	// Whatever is left: orphans of a killed supervisor, a component started by hand, an init
	// still running, what systemd could not be asked to stop.
	left, err := r.terminate(finder.find)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		var list []string
		for _, p := range left {
			list = append(list, p.String())
		}
		return fmt.Errorf("processes of %s still running after SIGKILL: %s", r.p.Root(), strings.Join(list, "; "))
	}
	if len(procs)+len(pods) > 0 {
		fmt.Fprintf(r.log, "[reset] Stopped every process of %s in %s\n", r.p.Root(), time.Since(start).Round(10*time.Millisecond))
	} else {
		fmt.Fprintf(r.log, "[reset] No process of %s is running\n", r.p.Root())
	}
	return nil
}

// stopper is reset's side of runmode.Stopper: what a run mode's Stop acts through, over reset's
// system boundary, honouring the dry run.
type stopper struct {
	r *Reset
	// pods are the static pod processes found before anything was stopped.
	pods []Process
	// kubeletDone and localDone note that the kubelet and the local supervisor were dealt with.
	kubeletDone, localDone bool
}

var _ runmode.Stopper = (*stopper)(nil)

func (s *stopper) StopUnits(ctx context.Context, units []string) { s.r.stopUnits(ctx, units) }

func (s *stopper) StopStaticPods(ctx context.Context, in runmode.Installed) error {
	s.kubeletDone = true
	return s.r.stopStaticPods(ctx, in, s.pods)
}

// StopLocal stops the root's supervisor and its components (in a dry run, nothing: what runs is
// listed already). A failure is a warning: what is left is stopped by signal afterwards.
func (s *stopper) StopLocal() error {
	s.localDone = true
	if s.r.o.DryRun {
		return nil
	}
	if _, err := s.r.sys.StopLocal(s.r.p, s.r.o.StopTimeout); err != nil {
		fmt.Fprintf(s.r.log, "[reset] WARNING: stopping the local supervisor: %v\n", err)
	}
	return nil
}

// terminate sends SIGTERM to what list returns, waits KillWait, sends SIGKILL to what is left and
// waits again; it returns the survivors. list is called afresh each time so that a pid reused
// meanwhile by an unrelated process is never signalled.
func (r *Reset) terminate(list func() ([]Process, error)) ([]Process, error) {
	procs, err := list()
	if err != nil || len(procs) == 0 {
		return nil, err
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, p := range procs {
			if sig == syscall.SIGKILL {
				fmt.Fprintf(r.log, "[reset] Killing process %s: still running %s after SIGTERM\n", p, r.sys.KillWait)
			}
			if err := r.sys.Kill(p.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				return nil, fmt.Errorf("sending %v to pid %d: %w", sig, p.PID, err)
			}
		}
		done := logx.Wait(r.log, "%d process(es) of %s to exit after %s", len(procs), r.p.Root(), unix.SignalName(sig))
		procs, err = r.waitGone(list, r.sys.KillWait)
		done(stillRunning(procs, err))
		if err != nil || len(procs) == 0 {
			return procs, err
		}
	}
	return procs, nil
}

// stillRunning is the outcome of a wait for processes to exit, for logx.Wait.
func stillRunning(left []Process, err error) error {
	if err != nil || len(left) == 0 {
		return err
	}
	var pids []int
	for _, p := range left {
		pids = append(pids, p.PID)
	}
	return fmt.Errorf("pids %v still running", pids)
}

// waitGone polls list until it is empty or timeout passes, and returns what is left.
func (r *Reset) waitGone(list func() ([]Process, error), timeout time.Duration) ([]Process, error) {
	var (
		left []Process
		err  error
	)
	poll := wait.PollUntilContextTimeout(context.Background(), r.sys.Poll, timeout, true, func(context.Context) (bool, error) {
		left, err = list()
		return err != nil || len(left) == 0, nil
	})
	if poll != nil {
		// The timeout fell between two polls: what runs at the deadline is the answer.
		left, err = list()
	}
	return left, err
}

// stopUnits stops and disables units over D-Bus; when systemd does not manage the root's units
// (a root dir other than "/", or no systemd), there is nothing systemd could be running.
func (r *Reset) stopUnits(ctx context.Context, units []string) {
	if ok, why := r.sys.Manageable(r.p); !ok {
		fmt.Fprintf(r.log, "[reset] Not asking systemd to stop %s: %s\n", strings.Join(units, ", "), why)
		if !r.p.IsRealRoot() {
			// `systemctl link` (what init suggests for such a root) makes systemd run them all
			// the same; only the operator knows whether that was done.
			fmt.Fprintf(r.log, "[reset] If you linked them into systemd, also run: systemctl disable --now %s && systemctl daemon-reload\n", strings.Join(units, " "))
		}
		return
	}
	if r.o.DryRun {
		fmt.Fprintf(r.log, "[dryrun] Would stop and disable %s\n", strings.Join(units, ", "))
		r.changes++
		return
	}
	fmt.Fprintf(r.log, "[reset] Stopping and disabling %s\n", strings.Join(units, ", "))
	done := logx.Wait(r.log, "systemd to stop and disable %s", strings.Join(units, ", "))
	m, err := r.sys.Systemd(ctx)
	if err == nil {
		defer m.Close()
		err = m.StopAndDisable(ctx, units)
	}
	done(err)
	if err != nil {
		// What keeps running is stopped below by signal; its unit file goes with cleanup.
		fmt.Fprintf(r.log, "[reset] WARNING: %v\n", err)
		return
	}
	r.changes++
}

// stopStaticPods removes the static pod manifests of in, so that the kubelet stops their pods,
// waits for that when a kubelet runs, then stops the kubelet; pod processes it left are killed.
func (r *Reset) stopStaticPods(ctx context.Context, in runmode.Installed, pods []Process) error {
	manifests := map[string]string{}
	for _, f := range in.Components {
		manifests[f.Name] = f.Source
	}
	names := slices.Sorted(maps.Keys(manifests))
	kubelet := r.kubeletRunning()
	if r.o.DryRun {
		for _, n := range names {
			fmt.Fprintf(r.log, "[dryrun] Would remove static pod manifest %s and wait for the kubelet to stop its pod\n", manifests[n])
		}
		if endpoint := r.criEndpoint(); endpoint != "" {
			fmt.Fprintf(r.log, "[dryrun] Would stop and remove every pod through the container runtime at %s\n", endpoint)
		}
		if kubelet || r.layout.KubeletUnit {
			r.stopUnits(ctx, []string{kubeletUnit})
		}
		return nil
	}
	fmt.Fprintf(r.log, "[reset] Removing the static pod manifests of %s so that the kubelet stops them\n", strings.Join(names, ", "))
	for _, n := range names {
		switch err := os.Remove(manifests[n]); {
		case err == nil:
			logx.FileRemoved(r.log, manifests[n])
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("remove static pod manifest: %w", err)
		}
		r.changes++
	}
	if endpoint := r.criEndpoint(); endpoint != "" {
		// kubeadm's order: the kubelet first, so that it starts nothing again, then every pod
		// through the runtime, which stops them at once instead of after their grace period.
		if kubelet || r.layout.KubeletUnit {
			r.stopUnits(ctx, []string{kubeletUnit})
		}
		r.removePods(ctx, endpoint)
	} else {
		if kubelet && len(pods) > 0 {
			fmt.Fprintf(r.log, "[reset] Waiting up to %s for the kubelet to stop the control-plane pods\n", r.sys.PodWait)
			done := logx.Wait(r.log, "the kubelet to stop %d control-plane pod process(es)", len(pods))
			left, err := r.waitGone(func() ([]Process, error) { return r.podProcesses(), nil }, r.sys.PodWait)
			done(stillRunning(left, err))
			if err != nil {
				return err
			}
			if len(left) > 0 {
				fmt.Fprintf(r.log, "[reset] WARNING: the kubelet did not stop %d pod process(es) in time\n", len(left))
			}
		}
		if kubelet || r.layout.KubeletUnit {
			r.stopUnits(ctx, []string{kubeletUnit})
		}
	}
	// Pods the kubelet did not get to: with the kubelet stopped nothing would restart them.
	left, err := r.terminate(func() ([]Process, error) { return r.podProcesses(), nil })
	if err != nil {
		return err
	}
	if len(left) > 0 {
		fmt.Fprintf(r.log, "[reset] WARNING: control-plane pod processes still running: %v\n", left)
	}
	return nil
}

// removePods stops and removes every pod sandbox through the container runtime at endpoint. A
// runtime that cannot be reached is reported, not fatal: the pods' processes are then stopped by
// signal like any other process of the root.
func (r *Reset) removePods(ctx context.Context, endpoint string) {
	fmt.Fprintf(r.log, "[reset] Stopping and removing the pods through the container runtime at %s\n", endpoint)
	done := logx.Wait(r.log, "the container runtime to stop and remove every pod")
	rt, err := r.sys.CRI(ctx, endpoint)
	var removed []string
	if err == nil {
		removed, err = rt.RemoveAllPods(ctx)
		rt.Close()
	}
	done(err)
	for _, n := range removed {
		fmt.Fprintf(r.log, "[reset] Removed pod %s\n", n)
	}
	r.changes += len(removed)
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: the container runtime at %s: %v\n", endpoint, err)
	}
}

// podProcesses finds the processes of the static pods whose manifests are (or were) under the
// root: a process whose command line is exactly a manifest's command. They run in the
// container's mount namespace, so every namespace counts; the full command line (flags naming
// this root's files) keeps another cluster's pods out.
func (r *Reset) podProcesses() []Process {
	manifests := r.layout.contained()
	if len(manifests) == 0 {
		return nil
	}
	pids, err := r.sys.Procs.Pids()
	if err != nil {
		return nil
	}
	var out []Process
	for _, pid := range pids {
		argv, err := r.sys.Procs.Cmdline(pid)
		if err != nil || len(argv) == 0 {
			continue
		}
		for name, cmd := range manifests {
			if len(cmd) == len(argv) && filepath.Base(argv[0]) == filepath.Base(cmd[0]) && slices.Equal(argv[1:], cmd[1:]) && r.sys.Procs.Alive(pid) {
				out = append(out, Process{PID: pid, Argv: argv, Why: "static pod " + name + " of the root"})
			}
		}
	}
	return out
}

// kubeletRunning reports whether a kubelet runs for this root: in this mount namespace, and for
// a root dir other than "/" with the root's files on its command line.
func (r *Reset) kubeletRunning() bool {
	pids, err := r.sys.Procs.Pids()
	if err != nil {
		return false
	}
	self := r.sys.Procs.MountNS(r.sys.Self)
	for _, pid := range pids {
		argv, err := r.sys.Procs.Cmdline(pid)
		if err != nil || len(argv) == 0 || filepath.Base(argv[0]) != "kubelet" {
			continue
		}
		if ns := r.sys.Procs.MountNS(pid); ns != "" && self != "" && ns != self {
			continue
		}
		if r.p.IsRealRoot() || slices.ContainsFunc(argv[1:], func(a string) bool { return refersTo(a, r.p.Root()) }) {
			return true
		}
	}
	return false
}
