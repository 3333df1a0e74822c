package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/join"
)

// joinOptions are join's own flags.
type joinOptions struct {
	overrides       config.JoinOverrides
	dryRun          bool
	ignorePreflight []string
	skipPhases      []string
	pauseBinary     string
}

func newJoinCommand(g *globalOptions) *cobra.Command { return joinCommand(g, &joinOptions{}) }

// joinCommand is join's command writing its flags to opts (tests read them back).
func joinCommand(g *globalOptions, opts *joinOptions) *cobra.Command {
	runner := join.NewRunner()
	runner.Log = g.Err
	addFlags := func(c *cobra.Command) {
		fs := c.Flags()
		o := &opts.overrides
		fs.StringVar(&o.Token, "token", "", "Use this token for both discovery-token and tls-bootstrap-token when those values are not provided.")
		fs.StringVar(&o.DiscoveryToken, "discovery-token", "", "For token-based discovery, the token used to validate cluster information fetched from the API server.")
		fs.StringSliceVar(&o.CACertHashes, "discovery-token-ca-cert-hash", nil, "For token-based discovery, validate that the root CA public key matches this hash (format: \"sha256:<hex>\"); repeatable.")
		fs.BoolVar(&o.UnsafeSkipCAVerification, "discovery-token-unsafe-skip-ca-verification", false, "For token-based discovery, allow joining without --discovery-token-ca-cert-hash pinning.")
		fs.StringVar(&o.DiscoveryFile, "discovery-file", "", "For file-based discovery, a file or an https URL from which to load cluster information (a kubeconfig embedding the CA).")
		fs.StringVar(&o.TLSBootstrapToken, "tls-bootstrap-token", "", "Specify the token used to temporarily authenticate with the Kubernetes control plane while joining the node.")
		fs.StringVar(&o.NodeName, "node-name", "", "Specify the node name. (default: the lower-cased hostname)")
		fs.BoolVar(&opts.dryRun, "dry-run", false, "write nothing under the root dir and create nothing in the cluster; print what would be done")
		fs.StringSliceVar(&opts.ignorePreflight, "ignore-preflight-errors", nil, "pre-flight checks whose errors become warnings, e.g. FileAvailable--etc-kubernetes-kubelet.conf; 'all' for every check")
		fs.BoolVar(&o.ControlPlane, "control-plane", false, "Create a new control plane instance on this node (the cluster needs a controlPlaneEndpoint).")
		fs.StringVar(&o.CertificateKey, "certificate-key", "", "Use this key to decrypt the certificate secrets uploaded by init (--upload-certs). The certificate key is a hex encoded string that is an AES key of size 32 bytes.")
		fs.StringVar(&o.AdvertiseAddress, "apiserver-advertise-address", "", "If the node should host a new control plane instance, the IP address the API Server will advertise it's listening on. If not set the default network interface will be used.")
		fs.Int32Var(&o.BindPort, "apiserver-bind-port", 0, "If the node should host a new control plane instance, the port for the API Server to bind to. (default 6443)")
		fs.StringVar(&opts.pauseBinary, "pause-binary", "", "static pause program to build the pod sandbox image from when the container runtime lacks it (images phase, as for init)")
	}
	data := func(cmd *cobra.Command, args []string) (*join.Join, error) {
		return newJoin(g, opts, args)
	}

	cmd := &cobra.Command{
		Use:   "join [api-server-endpoint]",
		Short: "Turn this host into a worker or control-plane node of a cluster",
		Long: `Join this host to a cluster as a worker node: discover the control plane and verify its identity
with a bootstrap token and the hash of its CA (or a discovery file), write the kubelet's files, and
obtain the node's client certificate through the TLS bootstrap.

  kubestrap join 192.168.0.10:6443 --token abcdef.0123456789abcdef \
      --discovery-token-ca-cert-hash sha256:<hash printed by init>

A systemd-managed kubelet on this host performs the TLS bootstrap itself, as with kubeadm; without
one kubestrap performs it and writes /etc/kubernetes/kubelet.conf, so a kubelet started later needs
nothing more.

With --control-plane --certificate-key K (printed by "kubestrap init --upload-certs") the host
joins as a control-plane node of a cluster that has a controlPlaneEndpoint: it downloads the
shared certificates, makes its own, adds its etcd member as a learner (one join at a time; refused
while another learner exists or the cluster is unhealthy), starts its control plane in its run
mode, promotes the member and waits until its components are healthy.

If any step fails, the files this join wrote are removed again (and a control-plane join's etcd
member and processes with them).

` + runner.Help(),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			j, err := newJoin(g, opts, args)
			if err != nil {
				return err
			}
			// An interrupted join rolls its files back like a failed one.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := join.RunAll(ctx, runner, j, opts.skipPhases); err != nil {
				return err
			}
			fmt.Fprintf(g.Err, "[join] Done in %s\n", time.Since(start).Round(time.Millisecond))
			j.Summary(g.Out)
			return nil
		},
	}
	addFlags(cmd)
	cmd.Flags().StringSliceVar(&opts.skipPhases, "skip-phases", nil, "phases to skip (kubeadm's phase names are accepted too): "+strings.Join(runner.ValidNames(), ", "))
	cmd.AddCommand(runner.PhaseCommands(data, addFlags))
	return cmd
}

// newJoin loads the JoinConfiguration (file, then flags, then the endpoint argument) and builds
// the join. Malformed values (token, hash, endpoint) fail here, before any network access.
func newJoin(g *globalOptions, opts *joinOptions, args []string) (*join.Join, error) {
	o, err := joinSettings(g, opts, args)
	if err != nil {
		return nil, err
	}
	return join.New(o)
}

// joinSettings maps join's flags, its endpoint argument and --config to the join's options.
func joinSettings(g *globalOptions, opts *joinOptions, args []string) (join.Options, error) {
	p, err := g.paths()
	if err != nil {
		return join.Options{}, err
	}
	o := opts.overrides
	if len(args) > 0 {
		o.APIServerEndpoint = args[0]
	}
	cfg, err := config.LoadJoinWith(g.ConfigFile, o, config.SystemHost{})
	if err != nil {
		return join.Options{}, err
	}
	dryRun := opts.dryRun || cfg.Join.DryRun
	kubelet, why := join.DetectKubelet(p)
	if kubelet == nil {
		fmt.Fprintf(g.Err, "[join] kubestrap performs the TLS bootstrap itself: %s\n", why)
	}
	if dryRun {
		fmt.Fprintf(g.Err, "[dryrun] Nothing will be written under %s\n", p.Root())
	}
	return join.Options{
		Paths:                 p,
		Config:                cfg,
		DryRun:                dryRun,
		IgnorePreflightErrors: opts.ignorePreflight,
		Log:                   g.Err,
		Kubelet:               kubelet,
		Images:                join.ImagesOptions{PauseBinary: opts.pauseBinary},
	}, nil
}
