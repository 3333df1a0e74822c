package initflow

// The run mode's part of init: each phase below calls the chosen runmode.Mode, which writes,
// starts and names what that mode runs; init never switches on the mode.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kubestrap/kubestrap/internal/components"
)

// writeComponent writes a component's manifest or unit; local mode keeps its command line in the
// supervisor's spec instead, written when the supervisor starts.
func writeComponent(d *Data, c components.Component) error {
	return d.mode.WriteComponent(d.run, c)
}

// startControlPlane starts the components whose files the control-plane phase wrote: through the
// local supervisor or systemd. In static-pod mode the kubelet-start phase does it.
func startControlPlane(ctx context.Context, d *Data) error {
	return d.mode.Start(ctx, d.run)
}

// runKubeletStart writes the kubelet's files and restarts it; only static-pod mode has a kubelet.
func runKubeletStart(ctx context.Context, d *Data) error {
	return d.mode.KubeletStart(ctx, d.run)
}

// shouldWaitForControlPlane reports whether wait-control-plane can expect the components to come
// up: not when static-pod or systemd mode only wrote files for an operator to start.
func shouldWaitForControlPlane(d *Data) bool {
	ok, _ := d.mode.Startable(d.p)
	return ok
}

// ErrNotStarted is returned by CheckStarted: init wrote the control plane's files but nothing
// runs them.
var ErrNotStarted = errors.New("the control plane was not started")

// CheckStarted is the verdict of a whole "kubestrap init" after its phases ran: an error when the
// run mode's files were written but kubestrap could not start them (static-pod or systemd mode
// under a root dir, or on a host where systemd is not PID 1), so that an operator never reads
// success while nothing runs. The commands that start the control plane were printed by the phase
// that could not run them. Skipping wait-control-plane says the caller does not expect a running
// control plane, so then this is not an error.
func CheckStarted(d *Data) error {
	if d.dryRun || slices.Contains(d.skip, "wait-control-plane") {
		return nil
	}
	ok, why := d.mode.Startable(d.p)
	if ok {
		return nil
	}
	next := "kubestrap init phase wait-control-plane --mode " + d.mode.Name()
	if !d.p.IsRealRoot() {
		next += " --root-dir " + d.p.Root()
	}
	return fmt.Errorf("%w: %s mode wrote its files under %s, but kubestrap cannot start them here (%s); start them with the commands printed above, then run '%s' and the phases after it with the same configuration",
		ErrNotStarted, d.mode.Name(), d.p.Root(), why, next)
}
