package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/reset"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// resetOptions are reset's own flags.
type resetOptions struct {
	force           bool
	dryRun          bool
	cleanupTmpDir   bool
	certDir         string
	skipPhases      []string
	ignorePreflight []string
}

func newResetRunner() *workflow.Runner[*reset.Reset] {
	// kubeadm's order: the etcd member is removed while the local etcd still answers.
	// Every phase of kubeadm's reset (preflight, remove-etcd-member, cleanup-node) has its
	// counterpart here, under its name or as an alias.
	return &workflow.Runner[*reset.Reset]{Command: "reset", Phases: []workflow.Phase[*reset.Reset]{
		{Name: "preflight", Aliases: []string{"pre-flight"}, Short: "Ask for confirmation and run pre-flight checks",
			Run: func(ctx context.Context, r *reset.Reset) error { return r.Preflight(ctx) }},
		{Name: "remove-etcd-member", Short: "Remove this node's etcd member from a multi-member etcd cluster",
			Run: func(ctx context.Context, r *reset.Reset) error { return r.RemoveEtcdMember(ctx) }},
		{Name: "stop", Short: "Stop every process of the root: local supervisor, systemd units, static pods, kubelet",
			Run: func(ctx context.Context, r *reset.Reset) error { return r.Stop(ctx) }},
		{Name: "cleanup", Aliases: []string{"cleanup-node", "cleanupnode"}, Short: "Unmount under the kubelet dir and remove kubestrap's files and directories",
			Run: func(ctx context.Context, r *reset.Reset) error { return r.Cleanup(ctx) }},
	}}
}

func newResetCommand(g *globalOptions) *cobra.Command {
	opts := &resetOptions{}
	runner := newResetRunner()
	runner.Log = g.Err
	addFlags := func(c *cobra.Command) {
		fs := c.Flags()
		fs.BoolVarP(&opts.force, "force", "f", false, "reset without asking for confirmation")
		fs.BoolVar(&opts.dryRun, "dry-run", false, "change nothing; list every process that would be stopped and every path that would be removed")
		fs.BoolVar(&opts.cleanupTmpDir, "cleanup-tmp-dir", false, "also remove the /etc/kubernetes/tmp directory (kubeadm's backups and dry-run output)")
		fs.StringVar(&opts.certDir, "cert-dir", "", "the certificates directory to clean, as a host path (default: the configured one, plus whichever the components use)")
		fs.StringSliceVar(&opts.ignorePreflight, "ignore-preflight-errors", nil, "pre-flight checks whose errors become warnings, e.g. KubeletMounts; 'all' for every check")
	}
	var skipFromConfig []string
	data := func(cmd *cobra.Command, args []string) (*reset.Reset, error) {
		r, skip, err := newResetData(g, opts, cmd)
		skipFromConfig = skip
		return r, err
	}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Undo what init or join did on this host",
		Long: `Stop every process kubestrap started under --root-dir (local supervisor, systemd units, static
pods and the kubelet), remove this node's etcd member from a multi-member etcd cluster, and remove
the files and directories kubestrap (or kubeadm, in the same layout) created. Files kubestrap did not
create are kept and reported; nothing is deleted through a mount point or along a symlink out of
the root dir. Running it again, or on a clean node, does nothing and exits 0.

` + runner.Help(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := data(cmd, args)
			if err != nil {
				return err
			}
			skip := append(skipFromConfig, opts.skipPhases...)
			if err := runner.Run(cmd.Context(), r, skip); err != nil {
				return err
			}
			r.Finish()
			return nil
		},
	}
	addFlags(cmd)
	cmd.Flags().StringSliceVar(&opts.skipPhases, "skip-phases", nil, "phases to skip (kubeadm's phase names are accepted too): "+strings.Join(runner.ValidNames(), ", "))
	cmd.AddCommand(runner.PhaseCommands(data, addFlags))
	return cmd
}

// newResetData builds a reset run from the flags and --config. The configuration file may be a
// ResetConfiguration, the file init was run with (its certificatesDir and etcd dataDir are then
// cleaned too), or both; flags win.
func newResetData(g *globalOptions, opts *resetOptions, cmd *cobra.Command) (*reset.Reset, []string, error) {
	p, err := g.paths()
	if err != nil {
		return nil, nil, err
	}
	o := reset.Options{Paths: p, In: g.In, Out: g.Out, Log: g.Err}
	var skip []string
	if g.ConfigFile != "" {
		rc, cluster, err := loadResetConfig(g.ConfigFile)
		if err != nil {
			return nil, nil, err
		}
		if rc != nil {
			o.CertificatesDir = rc.CertificatesDir
			o.CleanupTmpDir, o.DryRun, o.Force = rc.CleanupTmpDir, rc.DryRun, rc.Force
			o.IgnorePreflightErrors = rc.IgnorePreflightErrors
			o.UnmountFlags = rc.UnmountFlags
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
	fs := cmd.Flags()
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
	if fs.Changed("ignore-preflight-errors") {
		o.IgnorePreflightErrors = opts.ignorePreflight
	}
	r, err := reset.New(o, reset.System{UID: g.UID})
	if err != nil {
		return nil, nil, err
	}
	return r, skip, nil
}

// loadResetConfig reads the ResetConfiguration and the cluster configuration a file holds
// (either may be nil).
func loadResetConfig(path string) (*config.ResetConfiguration, *config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the config file: %w", err)
	}
	docs, err := config.ParseDocuments(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var rc *config.ResetConfiguration
	var cluster *config.Config
	if docs.Has(config.KindReset) {
		if rc, err = config.LoadReset(path); err != nil {
			return nil, nil, err
		}
	}
	if docs.Has(config.KindInit) || docs.Has(config.KindCluster) {
		if cluster, err = config.LoadInit(path, config.Overrides{}, config.SystemHost{}); err != nil {
			return nil, nil, err
		}
	}
	return rc, cluster, nil
}
