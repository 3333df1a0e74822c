package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/inspect"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// APIServerFlagCatalog returns the bundled kube-apiserver's options. Only the heavy bundle package
// can build it, so main sets this hook and the cli package (and its tests) stay free of the
// control plane. When nil, --all and --explain say the catalog is unavailable and no flag is
// marked unknown.
var APIServerFlagCatalog func() []inspect.FlagInfo

type showAPIServerOptions struct {
	source     string
	pid        int
	kubeconfig string
	output     string
	all        bool
	explain    bool
	diff       bool
	procDir    string
}

func newShowAPIServerOptionsCommand(g *globalOptions) *cobra.Command {
	return showAPIServerOptionsCommand(g, &showAPIServerOptions{})
}

// showAPIServerOptionsCommand is the command writing its flags to o (tests read them back).
func showAPIServerOptionsCommand(g *globalOptions, o *showAPIServerOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show-apiserver-options [--explain FLAG...]",
		Short: "Show the options this node's kube-apiserver runs with, and where each came from",
		Long: `Show the options this node's kube-apiserver runs with, from the running process (/proc), the
static pod manifest (/etc/kubernetes/manifests/kube-apiserver.yaml), the systemd unit
(/etc/systemd/system/kube-apiserver.service and its drop-ins) or a live server's /flagz.

--source auto takes the running process, else the manifest, else the unit, and says which it used.
--diff compares every local source and exits 1 when they differ. When no source has a
kube-apiserver the command exits 2 and lists where it looked.`,
		Example: `  kubestrap show-apiserver-options
  kubestrap show-apiserver-options -o args
  kubestrap show-apiserver-options --source flagz --kubeconfig ~/.kube/config
  kubestrap show-apiserver-options --explain secure-port etcd-servers
  kubestrap show-apiserver-options --diff`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.explain && len(args) == 0 {
				return errors.New("--explain needs at least one flag name")
			}
			if !o.explain && len(args) > 0 {
				return errors.New("flag names are only accepted with --explain")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runShowAPIServerOptions(ctx, g, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.source, "source", inspect.SourceAuto, "where to read the options: "+runmode.List(inspect.SourceChoices()))
	f.IntVar(&o.pid, "pid", 0, "the kube-apiserver process to inspect, when several run")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for --source flagz (default <root>/etc/kubernetes/admin.conf)")
	f.StringVarP(&o.output, "output", "o", inspect.OutputTable, "output format: table, yaml, json or args (one --flag=value per line, in command-line order)")
	f.BoolVar(&o.all, "all", false, "also list every option that is not set, with its default and help")
	f.BoolVar(&o.explain, "explain", false, "explain the named options: help, default and current value")
	f.BoolVar(&o.diff, "diff", false, "compare every local source (process, manifest, unit); exit 1 when they differ")
	f.StringVar(&o.procDir, "proc-dir", "/proc", "the proc filesystem to scan (for tests)")
	_ = f.MarkHidden("proc-dir")
	return cmd
}

func runShowAPIServerOptions(ctx context.Context, g *globalOptions, o *showAPIServerOptions, args []string) error {
	iopts, err := inspectOptions(g, o, args)
	if err != nil {
		return err
	}
	err = inspect.Run(ctx, iopts)
	var (
		optErr  *inspect.OptionError
		notFnd  *inspect.NotFoundError
		diffErr *inspect.DiffError
	)
	switch {
	case errors.As(err, &optErr):
		return UsageError{err}
	case errors.As(err, &notFnd):
		return withExitCode(2, err)
	case errors.As(err, &diffErr):
		return withExitCode(1, err)
	}
	return err
}

// inspectOptions maps the command's flags and arguments to inspect's options.
func inspectOptions(g *globalOptions, o *showAPIServerOptions, args []string) (inspect.Options, error) {
	p, err := g.paths()
	if errors.Is(err, paths.ErrNeedRoot) {
		// The root-privilege rule protects writes; this command only reads, and an operator
		// should not need sudo to see the flags of a process every user can see in ps.
		p, err = paths.MustUnder("/"), nil
	}
	if err != nil {
		return inspect.Options{}, err
	}
	var cat inspect.Catalog
	if APIServerFlagCatalog != nil {
		cat = inspect.NewCatalog(APIServerFlagCatalog())
	}
	var extra []string
	if exe, err := os.Executable(); err == nil {
		// Lets the scan recognise this very binary running the apiserver under another file name.
		extra = append(extra, filepath.Base(exe))
	}
	var explain []string
	if o.explain {
		explain = args
	}
	return inspect.Options{
		Paths:      p,
		ProcDir:    o.procDir,
		ExtraComms: extra,
		Source:     o.source,
		PID:        o.pid,
		Kubeconfig: o.kubeconfig,
		Output:     o.output,
		All:        o.all,
		Explain:    explain,
		Diff:       o.diff,
		Catalog:    cat,
		Out:        g.Out,
		Err:        g.Err,
	}, nil
}
