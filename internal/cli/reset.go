package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/reset"
)

// resetOptions are reset's own flags.
type resetOptions struct {
	force           bool
	dryRun          bool
	cleanupTmpDir   bool
	certDir         string
	skipPhases      []string
	ignorePreflight []string
	criSocket       string
}

func newResetCommand(g *globalOptions) *cobra.Command { return resetCommand(g, &resetOptions{}) }

// resetCommand is reset's command writing its flags to opts (tests read them back).
func resetCommand(g *globalOptions, opts *resetOptions) *cobra.Command {
	runner := reset.NewRunner()
	runner.Log = g.Err
	addFlags := func(c *cobra.Command) {
		fs := c.Flags()
		fs.BoolVarP(&opts.force, "force", "f", false, "reset without asking for confirmation (it does not override the etcd quorum guard: see --ignore-preflight-errors)")
		fs.BoolVar(&opts.dryRun, "dry-run", false, "change nothing; list every process that would be stopped and every path that would be removed")
		fs.BoolVar(&opts.cleanupTmpDir, "cleanup-tmp-dir", false, "also remove the /etc/kubernetes/tmp directory (kubeadm's backups and dry-run output)")
		fs.StringVar(&opts.certDir, "cert-dir", "", "the certificates directory to clean, as a host path (default: the configured one, plus whichever the components use)")
		fs.StringSliceVar(&opts.ignorePreflight, "ignore-preflight-errors", nil, "pre-flight checks whose errors become warnings: KubeletMounts; EtcdQuorum (remove this node's etcd member even when the members left would have no healthy quorum); 'all' for every check")
		fs.StringVar(&opts.criSocket, "cri-socket", "", "container runtime endpoint through which the pods are stopped and removed (default, when --root-dir is /: the kubelet's --container-runtime-endpoint in kubeadm-flags.env, else the one runtime socket found; under another root dir: none)")
	}
	data := func(cmd *cobra.Command, args []string) (*reset.Reset, error) {
		r, _, err := newResetData(g, opts, cmd)
		return r, err
	}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Undo what init or join did on this host",
		Long: `Stop every process kubestrap started under --root-dir (local supervisor, systemd units, static
pods and the kubelet), remove this node's etcd member from a multi-member etcd cluster (through the
other members when this node's etcd is down; refused, before anything is stopped, when the members
left would have no healthy quorum, unless --ignore-preflight-errors=EtcdQuorum), and remove
the files and directories kubestrap (or kubeadm, in the same layout) created. Files kubestrap did not
create are kept and reported; nothing is deleted through a mount point or along a symlink out of
the root dir. Running it again, or on a clean node, does nothing and exits 0.

` + runner.Help(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, skipFromConfig, err := newResetData(g, opts, cmd)
			if err != nil {
				return err
			}
			return reset.RunAll(cmd.Context(), runner, r, skipFromConfig, opts.skipPhases)
		},
	}
	addFlags(cmd)
	cmd.Flags().StringSliceVar(&opts.skipPhases, "skip-phases", nil, "phases to skip (kubeadm's phase names are accepted too): "+strings.Join(runner.ValidNames(), ", "))
	cmd.AddCommand(runner.PhaseCommands(data, addFlags))
	return cmd
}

// newResetData builds a reset run from the flags and --config, and returns the configuration's
// skipPhases. The configuration file may be a ResetConfiguration, the file init was run with (its
// certificatesDir and etcd dataDir are then cleaned too), or both; flags win.
func newResetData(g *globalOptions, opts *resetOptions, cmd *cobra.Command) (*reset.Reset, []string, error) {
	o, skip, err := resetSettings(g, opts, cmd.Flags())
	if err != nil {
		return nil, nil, err
	}
	r, err := reset.New(o, reset.System{UID: g.UID})
	if err != nil {
		return nil, nil, err
	}
	return r, skip, nil
}

// resetSettings maps reset's flags (those fs says were given win) and --config to the reset's
// options, and returns the configuration's skipPhases.
func resetSettings(g *globalOptions, opts *resetOptions, fs *pflag.FlagSet) (reset.Options, []string, error) {
	p, err := g.paths()
	if err != nil {
		return reset.Options{}, nil, err
	}
	o := reset.Options{Paths: p, In: g.In, Out: g.Out, Log: g.Err}
	var skip []string
	if g.ConfigFile != "" {
		rc, cluster, err := config.LoadResetFile(g.ConfigFile, config.SystemHost{})
		if err != nil {
			return reset.Options{}, nil, err
		}
		if rc != nil {
			o.CertificatesDir = rc.CertificatesDir
			o.CleanupTmpDir, o.DryRun, o.Force = rc.CleanupTmpDir, rc.DryRun, rc.Force
			o.IgnorePreflightErrors = rc.IgnorePreflightErrors
			o.UnmountFlags = rc.UnmountFlags
			o.CRISocket = rc.CRISocket
			skip = rc.SkipPhases
		}
		if cluster != nil {
			if rc == nil {
				o.CertificatesDir = cluster.Cluster.CertificatesDir
			}
			if l := cluster.Cluster.Etcd.Local; l != nil {
				o.EtcdDataDir = l.DataDir
			}
		}
	}
	if fs.Changed("cert-dir") {
		o.CertificatesDir = opts.certDir
	}
	if fs.Changed("force") {
		o.Force = opts.force
	}
	if fs.Changed("dry-run") {
		o.DryRun = opts.dryRun
	}
	if fs.Changed("cleanup-tmp-dir") {
		o.CleanupTmpDir = opts.cleanupTmpDir
	}
	if fs.Changed("cri-socket") {
		o.CRISocket = opts.criSocket
	}
	if fs.Changed("ignore-preflight-errors") {
		o.IgnorePreflightErrors = opts.ignorePreflight
	}
	return o, skip, nil
}
