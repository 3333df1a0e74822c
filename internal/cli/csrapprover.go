package cli

import (
	"context"
	"errors"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/csrapprover"
)

// newCSRApproverCommand is the approver of kubelet serving certificates that every run mode runs
// next to the control plane (as the program kubestrap-csr-approver, through a symlink, a unit or
// a static Pod); people do not usually run it by hand, hence hidden.
func newCSRApproverCommand(g *globalOptions) *cobra.Command {
	var kubeconfig, healthAddr string
	cmd := &cobra.Command{
		Use:    "csr-approver --kubeconfig FILE [--healthz-bind-address 127.0.0.1:PORT]",
		Short:  "Approve kubelet serving certificate requests that kubestrap can vouch for (started by init)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kubeconfig == "" {
				return UsageError{errors.New("--kubeconfig is required: the approver's identity (csr-approver.conf under /etc/kubernetes)")}
			}
			parent := cmd.Context()
			if parent == nil {
				parent = context.Background()
			}
			ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
			defer stop()
			return csrapprover.Run(ctx, kubeconfig, healthAddr, g.Err)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig with the approver's identity ("+csrapprover.User+")")
	cmd.Flags().StringVar(&healthAddr, "healthz-bind-address", "", "loopback host:port to serve /healthz and /readyz on, plain HTTP (none when empty)")
	return cmd
}

// Args returns the CLI arguments of a process started with argv: argv[1:], behind
// "csr-approver" when the process was started under the approver's own name (its symlink,
// unit or image entrypoint). The monolith and the front both start the CLI this way.
func Args(argv []string) []string {
	if len(argv) > 0 && filepath.Base(argv[0]) == csrapprover.Program {
		return append([]string{"csr-approver"}, argv[1:]...)
	}
	return argv[1:]
}
