package initflow

import (
	"context"
	"fmt"
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

// AlreadyUp looks at what an earlier init of this root left running (runmode.Mode.FindRunning:
// local mode's supervisor). It reports true with a message when there is nothing to do. When the
// control plane of this root runs but init did not finish, it marks the run as a resumption (the
// components' ports are ours) and returns false, so that the remaining phases run.
func AlreadyUp(ctx context.Context, d *Data) (bool, string) {
	if d.dryRun {
		return false, ""
	}
	run := d.mode.FindRunning(d.p)
	// Healthy processes alone do not make a finished init: an init interrupted after
	// wait-control-plane leaves them running without the cluster objects.
	finished := run.Found && run.Healthy && initComplete(ctx, d)
	switch decideResume(run.Found, run.Healthy, finished) {
	case runNothing:
		msg := fmt.Sprintf("[init] The control plane of %s is already running and healthy (%s); nothing to do.\n[init] Use 'kubestrap status' to inspect it or 'kubestrap reset' to remove it.", d.p.Root(), run.What)
		if d.uploadCerts {
			// --upload-certs on a finished init would otherwise be dropped without a word.
			msg += "\n[init] To upload the certificates for control-plane joins, run 'kubestrap init phase upload-certs --upload-certs'."
		}
		return true, msg
	case runResume:
		d.ownControlPlaneRunning = true
		fmt.Fprintf(d.log, "[init] The control plane of this root is running (%s) but init did not finish; completing the remaining phases\n", run.What)
	}
	return false, ""
}
