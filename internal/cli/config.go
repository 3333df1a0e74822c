package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/initflow"
	"github.com/kubestrap/kubestrap/internal/join"
	"github.com/kubestrap/kubestrap/internal/reset"
)

// newConfigCommand is `kubestrap config`: print default configuration files and check one.
func newConfigCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print default configuration files and validate configuration files",
		Long: `kubestrap reads kubeadm's configuration format (kubeadm.k8s.io/v1beta4) plus one
kubestrap.io/v1alpha1 KubestrapConfiguration document for what kubeadm has no field for.`,
		Args: cobra.NoArgs,
		RunE: helpOrUnknown,
	}
	cmd.AddCommand(newConfigPrintCommand(g), newConfigValidateCommand(g))
	return cmd
}

func newConfigPrintCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "print",
		Short: "Print default configuration files",
		Args:  cobra.NoArgs,
		RunE:  helpOrUnknown,
	}
	printer := func(use, short, long string, marshal func() ([]byte, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Long:  long,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return printDefaults(g.Out, marshal)
			},
		}
	}
	cmd.AddCommand(
		printer("init-defaults", "Print a complete default configuration for init",
			`Print InitConfiguration, ClusterConfiguration and KubestrapConfiguration with every default
filled in, as a starting point for --config. Like kubeadm, host-specific values are placeholders
(advertiseAddress 1.2.3.4, node name "node", bootstrap token abcdef.0123456789abcdef): replace
them, or delete them to have init detect the address and name and generate a token.`,
			func() ([]byte, error) { return config.Marshal(config.DefaultInit()) }),
		printer("join-defaults", "Print a complete default configuration for join",
			`Print JoinConfiguration and KubestrapConfiguration with every default filled in. The
discovery settings are placeholders; set caCertHashes rather than keeping unsafeSkipCAVerification.`,
			func() ([]byte, error) { return config.MarshalJoin(config.DefaultJoin()) }),
		printer("reset-defaults", "Print the default configuration for reset", "",
			func() ([]byte, error) { return config.MarshalReset(config.DefaultReset()) }),
	)
	return cmd
}

// helpOrUnknown makes a command group runnable so that cobra checks its arguments: without it, a
// mistyped subcommand ("config prnit") prints the help and exits 0, which a script cannot notice.
// cobra.NoArgs reports the unknown subcommand and markUsageErrors turns that into a usage error.
func helpOrUnknown(cmd *cobra.Command, args []string) error { return cmd.Help() }

func printDefaults(out io.Writer, marshal func() ([]byte, error)) error {
	b, err := marshal()
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

func newConfigValidateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate --config FILE",
		Short: "Check a configuration file and report every problem in it",
		Long: `Decode the file given with --config strictly (unknown fields, kinds and apiVersions are
errors), apply the defaults init, join or reset would, and validate the result. Every problem is
reported, not just the first. Host-specific defaults (node name, advertise address) are detected
on this host, as init would.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigValidate(g.ConfigFile, config.SystemHost{}, g.Out)
		},
	}
}

// runConfigValidate is config validate without cobra.
func runConfigValidate(path string, host config.Host, out io.Writer) error {
	if path == "" {
		return UsageError{errors.New("config validate needs the file to check: pass --config FILE")}
	}
	kinds, err := config.ValidateFile(path, host, phaseNames())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "ok: %s is valid (%s)\n", path, strings.Join(kinds, ", "))
	return err
}

// phaseNames are the phase names each command's skipPhases accepts, taken from the same runners
// the commands run, so that config validate and the commands accept and refuse the same names.
func phaseNames() config.PhaseNames {
	return config.PhaseNames{
		Init:  initflow.NewRunner().ValidNames(),
		Join:  join.NewRunner().ValidNames(),
		Reset: reset.NewRunner().ValidNames(),
	}
}
