package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/supervisor"
)

type stopOptions struct {
	Timeout time.Duration
}

func newStopCommand(g *globalOptions) *cobra.Command {
	o := &stopOptions{}
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the local control plane (supervisor and components) under --root-dir",
		Long: `Stop the supervisor that "kubestrap init --mode local" started under --root-dir; it stops the
components in reverse start order. Any component process of the root left without a supervisor
is stopped too. Exits 0 when nothing was running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStop(g, o) },
	}
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "how long to wait before killing what has not stopped (0: every component's stop timeout plus a margin)")
	return cmd
}

func runStop(g *globalOptions, o *stopOptions) error {
	p, err := g.paths()
	if err != nil {
		return err
	}
	stopped, err := supervisor.Host{Log: g.Err}.Stop(p, o.Timeout)
	if err != nil {
		return err
	}
	if !stopped {
		fmt.Fprintf(g.Err, "[stop] Nothing to stop: no local control plane is running under %s\n", p.Root())
		return nil
	}
	fmt.Fprintf(g.Err, "[stop] Stopped the local control plane under %s\n", p.Root())
	return nil
}
