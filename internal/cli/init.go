package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/initflow"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// initOptions are init's own flags.
type initOptions struct {
	overrides       config.Overrides
	dryRun          bool
	skipPhases      []string
	ignorePreflight []string
	skipTokenPrint  bool
	token           string
	// uploadCerts, certificateKey and skipCertificateKeyPrint are kubeadm's flags for sharing the
	// control-plane certificates with control-plane nodes that join later (upload-certs phase).
	uploadCerts             bool
	certificateKey          string
	skipCertificateKeyPrint bool
	// pauseBinary is the images phase's static pause program (static-pod mode).
	pauseBinary string
}

func newInitCommand(g *globalOptions) *cobra.Command { return initCommand(g, &initOptions{}) }

// initCommand is init's command writing its flags to opts (tests read them back).
func initCommand(g *globalOptions, opts *initOptions) *cobra.Command {
	runner := initflow.NewRunner()
	runner.Log = g.Err
	addFlags := func(c *cobra.Command) {
		fs := c.Flags()
		addInitConfigFlags(fs, &opts.overrides)
		fs.StringVar(&opts.overrides.Mode, "mode", "", "how to run the control plane: "+runmode.List(runmode.Choices())+" (default auto)")
		fs.BoolVar(&opts.dryRun, "dry-run", false, "write nothing under the root dir; print what would be written and done")
		fs.StringSliceVar(&opts.ignorePreflight, "ignore-preflight-errors", nil, "pre-flight checks whose errors become warnings, e.g. Port-6443; 'all' for every check")
		fs.BoolVar(&opts.uploadCerts, "upload-certs", false, "upload the shared control-plane certificates, encrypted with the certificate key, to the kube-system/kubeadm-certs Secret (deleted after 2h) for control-plane nodes that join")
		fs.StringVar(&opts.certificateKey, "certificate-key", "", "the key (64 hex characters, from 'kubestrap certs certificate-key') that encrypts the uploaded certificates; generated when empty (InitConfiguration certificateKey)")
		fs.BoolVar(&opts.skipCertificateKeyPrint, "skip-certificate-key-print", false, "do not print the certificate key --upload-certs uses")
		fs.StringVar(&opts.pauseBinary, "pause-binary", "", "static-pod mode: a static pause program (k8s.io/kubernetes' build/pause/linux/pause.c) to build the pod sandbox image from, when the container runtime lacks it")
	}
	data := func(cmd *cobra.Command, args []string) (*initflow.Data, error) { return newInitData(g, opts) }

	cmd := &cobra.Command{
		Use:   "init",
		Short: "Turn this host into a Kubernetes control-plane node",
		Long: `Generate the PKI and kubeconfig files and run etcd, kube-apiserver, kube-controller-manager
and kube-scheduler on this host, then make the cluster ready for nodes to join.

` + runner.Help(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := newInitData(g, opts)
			if err != nil {
				return err
			}
			// Checked here too, so that a mistyped phase is refused even when the control plane
			// is already up and init would otherwise do nothing.
			if err := runner.ValidateSkip(d.Skip(opts.skipPhases)); err != nil {
				return err
			}
			if up, msg := initflow.AlreadyUp(cmd.Context(), d); up {
				fmt.Fprintln(g.Err, msg)
				return nil
			}
			runner.Log = g.Err // the leveled writer now: -v 1 traces each phase's timing
			if err := initflow.RunAll(cmd.Context(), runner, d, opts.skipPhases); err != nil {
				return err
			}
			// Exit 0 only when the control plane runs (or the caller skipped waiting for it).
			return initflow.CheckStarted(d)
		},
	}
	addFlags(cmd)
	cmd.Flags().StringSliceVar(&opts.skipPhases, "skip-phases", nil, "phases to skip (kubeadm's phase names are accepted too): "+strings.Join(runner.ValidNames(), ", "))
	cmd.Flags().BoolVar(&opts.skipTokenPrint, "skip-token-print", false, "do not print the bootstrap token and join command")
	cmd.Flags().StringVar(&opts.token, "token", "", "the bootstrap token to create ([a-z0-9]{6}.[a-z0-9]{16}); generated when empty")
	cmd.AddCommand(runner.PhaseCommands(data, addFlags))
	return cmd
}

func newInitData(g *globalOptions, opts *initOptions) (*initflow.Data, error) {
	p, err := g.paths()
	if err != nil {
		return nil, err
	}
	cfg, o, err := initSettings(g, opts)
	if err != nil {
		return nil, err
	}
	mode, reason, err := runmode.Resolve(cfg.Kubestrap.Mode, runmode.RealHost{}, p)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		fmt.Fprintf(g.Err, "[init] Using mode %q: %s\n", mode.Name(), reason)
	}
	return initflow.New(cfg, p, mode.Name(), o)
}

// initSettings maps init's flags and --config to the effective configuration and the run's
// options; it asks the host only for what the flags and the file leave to detection.
func initSettings(g *globalOptions, opts *initOptions) (*config.Config, initflow.Options, error) {
	cfg, err := config.LoadInit(g.ConfigFile, opts.overrides, config.SystemHost{})
	if err != nil {
		return nil, initflow.Options{}, err
	}
	if opts.token != "" || opts.certificateKey != "" {
		if opts.token != "" {
			cfg.Init.BootstrapTokens = []config.BootstrapToken{{Token: opts.token}}
		}
		if opts.certificateKey != "" {
			cfg.Init.CertificateKey = opts.certificateKey
		}
		config.SetDefaults(cfg)
		// Validation redacts what it reports of a malformed token or key.
		if err := config.Validate(cfg); err != nil {
			return nil, initflow.Options{}, err
		}
	}
	return cfg, initflow.Options{
		DryRun: opts.dryRun, IgnorePreflight: opts.ignorePreflight, SkipTokenPrint: opts.skipTokenPrint,
		UploadCerts: opts.uploadCerts, CertificateKey: cfg.Init.CertificateKey, SkipCertificateKeyPrint: opts.skipCertificateKeyPrint,
		Images: initflow.ImagesOptions{PauseBinary: opts.pauseBinary},
		Out:    g.Out, Log: g.Err,
	}, nil
}
