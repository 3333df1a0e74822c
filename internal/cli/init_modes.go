package cli

import (
	"context"
	"fmt"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
)

// errModeUnavailable is returned until the static-pod and systemd renderers exist.
func errModeUnavailable(mode string) error {
	return fmt.Errorf("run mode %q is not available in this version of kubestrap (only \"local\" is); pass --mode local", mode)
}

func writeStaticPodManifest(d *initData, c components.Component) error {
	return errModeUnavailable(config.ModeStaticPod)
}

func writeSystemdUnit(d *initData, c components.Component) error {
	return errModeUnavailable(config.ModeSystemd)
}

func startSystemd(ctx context.Context, d *initData) error {
	return errModeUnavailable(config.ModeSystemd)
}

// runKubeletStart writes the kubelet's files and restarts it; only static-pod mode has a kubelet.
func runKubeletStart(ctx context.Context, d *initData) error {
	if d.mode != config.ModeStaticPod {
		fmt.Fprintf(d.log, "[kubelet-start] Skipped: mode %q runs the control plane without a kubelet\n", d.mode)
		return nil
	}
	return errModeUnavailable(config.ModeStaticPod)
}

// checkModeAvailable fails before anything is written when this build cannot run mode.
func checkModeAvailable(mode string) error {
	if mode == config.ModeLocal {
		return nil
	}
	return errModeUnavailable(mode)
}
