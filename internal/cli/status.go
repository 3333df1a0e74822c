package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/runmode"
)

type statusOptions struct {
	Output string
}

func newStatusCommand(g *globalOptions) *cobra.Command { return statusCommand(g, &statusOptions{}) }

// statusCommand is the command writing its flags to o (tests read them back).
func statusCommand(g *globalOptions, o *statusOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the local control plane's processes, uptime, restarts and health",
		Long: `Show the control plane that "kubestrap init --mode local" started under --root-dir: the
supervisor and, for every component, its pid, uptime, restart count and health. Exits 1 when
anything is not running or not healthy, or when nothing was ever started under the root. For a
control plane run by systemd or the kubelet it says which command reports on it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStatus(g, o) },
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "table", "output format: table or json")
	return cmd
}

// validate refuses an output format the command cannot write.
func (o *statusOptions) validate() error {
	if o.Output != "table" && o.Output != "json" {
		return UsageError{fmt.Errorf("unknown output format %q: use table or json", o.Output)}
	}
	return nil
}

func runStatus(g *globalOptions, o *statusOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	p, err := g.paths()
	if err != nil {
		return err
	}
	report, err := runmode.Status(context.Background(), p)
	if errors.Is(err, runmode.ErrNothingInstalled) {
		return withExitCode(1, fmt.Errorf("no local control plane was ever started under %s: start one with kubestrap init --mode local --root-dir %s", p.Root(), p.Root()))
	}
	if err != nil {
		return err
	}
	if o.Output == "json" {
		enc := json.NewEncoder(g.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := report.WriteTable(g.Out); err != nil {
		return err
	}
	if problems := report.Problems(); len(problems) > 0 {
		return withExitCode(1, fmt.Errorf("the control plane is not healthy: %s", strings.Join(problems, "; ")))
	}
	return nil
}
