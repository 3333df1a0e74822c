package supervisor

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
)

const (
	// pollInterval is how often Stop looks whether its targets are gone.
	pollInterval = 50 * time.Millisecond
	// killWait bounds the wait for SIGKILLed processes to disappear.
	killWait = 5 * time.Second
)

// Stop stops the local control plane of p's root with the real system; see Host.Stop.
func Stop(p paths.Paths, timeout time.Duration) (bool, error) {
	return Host{}.Stop(p, timeout)
}

// Stop sends the root's supervisor SIGTERM (it stops the components in reverse order) and waits
// until the supervisor and every recorded component are gone. As a safety net it also finds any
// process started through the root's bin dir — the orphans of a supervisor that was killed with
// SIGKILL — and terminates it. Whatever is still alive after timeout (<= 0: the spec's stop
// timeout for every component, plus a margin) gets SIGKILL. Stale pid and status files are
// removed. stopped is false when nothing was running.
func (h Host) Stop(p paths.Paths, timeout time.Duration) (stopped bool, err error) {
	h = h.withDefaults()
	if timeout <= 0 {
		timeout = defaultStopWait(p)
	}
	deadline := h.Clock.Now().Add(timeout)

	sup := h.liveSupervisor(p)
	targets, err := h.targets(p)
	if err != nil {
		return false, err
	}
	if sup == 0 && len(targets) == 0 {
		removeStaleFiles(p, h.Log)
		return false, nil
	}
	if sup != 0 {
		if err := h.signal(sup, syscall.SIGTERM); err != nil {
			return true, err
		}
		h.waitGoneLogged(fmt.Sprintf("the supervisor (pid %d) to stop its components and exit after SIGTERM", sup),
			func() []int { return h.alive([]int{sup}) }, deadline)
	}
	// Anything left is no supervisor's business any more: what the supervisor did not stop in
	// time, and orphans. The list is taken afresh each time, so that a pid that ended and was
	// reused meanwhile is never signalled.
	remaining := func() []int {
		pids, _ := h.targets(p)
		return pids
	}
	rest := remaining()
	for _, pid := range rest {
		if err := h.signal(pid, syscall.SIGTERM); err != nil {
			return true, err
		}
	}
	var left []int
	if len(rest) > 0 {
		left = h.waitGoneLogged(fmt.Sprintf("pids %v of %s to exit after SIGTERM", rest, p.Root()), remaining, deadline)
	}
	if len(left) > 0 {
		for _, pid := range left {
			if err := h.signal(pid, syscall.SIGKILL); err != nil {
				return true, err
			}
		}
		if left = h.waitGoneLogged(fmt.Sprintf("pids %v to exit after SIGKILL", left), remaining, h.Clock.Now().Add(killWait)); len(left) > 0 {
			return true, fmt.Errorf("processes of %s still running after SIGKILL: %v", p.Root(), left)
		}
	}
	removeStaleFiles(p, h.Log)
	return true, nil
}

// waitGoneLogged is waitGone reported at -v 1 as a wait for what; survivors end it as a failure.
func (h Host) waitGoneLogged(what string, live func() []int, deadline time.Time) []int {
	done := logx.Wait(h.Log, "%s", what)
	left := h.waitGone(live, deadline)
	if len(left) > 0 {
		done(fmt.Errorf("pids %v still running", left))
	} else {
		done(nil)
	}
	return left
}

// targets lists the live processes of the root: the supervisor, the components recorded in pid
// files, and whatever runs through the root's bin dir.
func (h Host) targets(p paths.Paths) ([]int, error) {
	var pids []int
	if sup := h.liveSupervisor(p); sup != 0 {
		pids = append(pids, sup)
	}
	for _, name := range pidFileNames(p) {
		if pid := h.liveComponent(p, name); pid != 0 {
			pids = append(pids, pid)
		}
	}
	scanned, err := h.scan(p)
	if err != nil {
		return nil, err
	}
	pids = append(pids, scanned...)
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// alive returns the pids of list that are still running.
func (h Host) alive(list []int) []int {
	var out []int
	for _, pid := range list {
		if h.Proc.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// waitGone polls until live() is empty or deadline passes, and returns what is left. It stays a
// loop rather than apimachinery's wait.Poll* because it runs on h.Clock, the seam tests use.
func (h Host) waitGone(live func() []int, deadline time.Time) []int {
	for {
		left := live()
		if len(left) == 0 || !h.Clock.Now().Before(deadline) {
			return left
		}
		<-h.Clock.After(pollInterval)
	}
}

// pidFileNames lists the components that have a pid file in the run dir.
func pidFileNames(p paths.Paths) []string {
	matches, _ := filepath.Glob(filepath.Join(p.RunDir(), "*.pid"))
	var names []string
	for _, m := range matches {
		if name := strings.TrimSuffix(filepath.Base(m), ".pid"); name != supervisorName {
			names = append(names, name)
		}
	}
	return names
}

// defaultStopWait gives the supervisor time to stop every component in turn.
func defaultStopWait(p paths.Paths) time.Duration {
	const margin = 5 * time.Second
	if spec, err := ReadSpec(p); err == nil {
		return time.Duration(len(spec.Components))*spec.StopTimeout + margin
	}
	return 4*DefaultStopTimeout + margin
}

// removeStaleFiles removes the pid files, status and lock a dead supervisor left behind.
func removeStaleFiles(p paths.Paths, log io.Writer) {
	for _, name := range pidFileNames(p) {
		_ = removeIfExists(p.PidFile(name), log)
	}
	_ = removeIfExists(p.PidFile(supervisorName), log)
	_ = removeIfExists(statusFile(p), log)
	// The lock file is only stale if nobody holds it; a supervisor starting right now might, and
	// then keeps it. A killed supervisor still holds it for a moment after it looks dead: its
	// main thread shows as a zombie while its other threads are still exiting, and the lock goes
	// only with the last of them (they share the descriptor table). So the lock is tried for a
	// short while before the file is left to whoever holds it.
	if f, err := os.OpenFile(lockFile(p), os.O_RDWR, 0); err == nil {
		for deadline := time.Now().Add(staleLockWait); ; time.Sleep(20 * time.Millisecond) {
			if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
				_ = removeIfExists(lockFile(p), log)
				break
			}
			if time.Now().After(deadline) {
				break
			}
		}
		f.Close()
	}
}

// staleLockWait bounds how long removeStaleFiles waits for a dying holder of the supervisor lock.
const staleLockWait = time.Second
