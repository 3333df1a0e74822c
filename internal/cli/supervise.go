package cli

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/supervisor"
)

// newSuperviseCommand is the detached process of local mode, launched by init through
// supervisor.Start; people do not run it, hence hidden.
func newSuperviseCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "supervise",
		Short:  "Run the local-mode control plane in the foreground (started by init)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.paths()
			if err != nil {
				return err
			}
			spec, err := supervisor.ReadSpec(p)
			if err != nil {
				return err
			}
			parent := cmd.Context()
			if parent == nil {
				parent = context.Background()
			}
			// SIGHUP too: run by hand in a terminal that goes away, it must still stop in order
			// rather than die and leave the components to Pdeathsig.
			ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
			defer stop()
			return supervisor.Run(ctx, p, spec, supervisor.Deps{Log: g.Err})
		},
	}
}
