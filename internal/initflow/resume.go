package initflow

import (
	"context"
	"fmt"

	"github.com/kubestrap/kubestrap/internal/supervisor"
)

// resumeAction is what a repeated init does about what an earlier init of the same root left.
type resumeAction int

const (
	// runFresh: no supervisor of this root runs; every phase runs, port checks included.
	runFresh resumeAction = iota
	// runResume: this root's supervisor runs, so the ports its components hold (or are about
	// to hold while they start) are ours: the port checks are skipped, the running supervisor
	// is kept, and wait-control-plane waits for health as after a fresh start.
	runResume
	// runNothing: the control plane is healthy and init finished; nothing to do.
	runNothing
)

// decideResume: a running supervisor of the root is enough to resume, whether or not its
// components are healthy yet. An init interrupted during wait-control-plane (Ctrl-C, a lost SSH
// session) leaves components that are still starting; judging them by their health would make
// them strangers on our own ports. Only a healthy control plane of a finished init is done.
func decideResume(supervisorRunning, healthy, initFinished bool) resumeAction {
	switch {
	case !supervisorRunning:
		return runFresh
	case healthy && initFinished:
		return runNothing
	default:
		return runResume
	}
}

// AlreadyUp looks at what an earlier init of this root left running (local mode). It reports true
// with a message when there is nothing to do. When this root's supervisor runs but init did not
// finish, it marks the run as a resumption (the components' ports are ours) and returns false, so
// that the remaining phases run.
func AlreadyUp(ctx context.Context, d *Data) (bool, string) {
	if d.dryRun || !d.mode.FindsRunning() {
		return false, ""
	}
	running, pid := supervisor.Running(d.p)
	healthy, finished := false, false
	if running {
		rep, err := supervisor.Status(d.p, supervisor.CheckHealth)
		healthy = err == nil && rep.Running() && rep.Healthy()
		// Healthy processes alone do not make a finished init: an init interrupted after
		// wait-control-plane leaves them running without the cluster objects.
		finished = healthy && initComplete(ctx, d)
	}
	switch decideResume(running, healthy, finished) {
	case runNothing:
		return true, fmt.Sprintf("[init] The control plane of %s is already running and healthy (supervisor pid %d); nothing to do.\n[init] Use 'kubestrap status' to inspect it or 'kubestrap reset' to remove it.", d.p.Root(), pid)
	case runResume:
		d.ownControlPlaneRunning = true
		sup := fmt.Sprintf("supervisor pid %d", pid)
		if pid == 0 {
			sup = "its supervisor is starting"
		}
		fmt.Fprintf(d.log, "[init] The control plane of this root is running (%s) but init did not finish; completing the remaining phases\n", sup)
	}
	return false, ""
}
