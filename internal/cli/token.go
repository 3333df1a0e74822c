package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/pki"
)

// tokenOptions are the flags shared by the token subcommands.
type tokenOptions struct {
	kubeconfig string
	dryRun     bool
}

// tokenCreateOptions are the flags of token create.
type tokenCreateOptions struct {
	ttl              time.Duration
	usages, groups   []string
	description      string
	printJoinCommand bool
}

// newToken builds the token to create from the flags and the optional [token] argument.
// groupsGiven says whether --groups was passed: the default group only makes sense for a token
// that authenticates, so it is dropped rather than refused when --usages leaves authentication
// out and --groups was not given.
func (o *tokenCreateOptions) newToken(args []string, groupsGiven bool, now time.Time) (bootstrap.Token, error) {
	var token string
	if len(args) > 0 {
		token = args[0]
	}
	groups := o.groups
	if !groupsGiven && !slices.Contains(o.usages, "authentication") {
		groups = nil
	}
	t, err := bootstrap.NewToken(token, o.description, o.ttl, o.usages, groups, now)
	if err != nil {
		return bootstrap.Token{}, UsageError{err}
	}
	return t, nil
}

func newTokenCommand(g *globalOptions) *cobra.Command {
	return tokenCommand(g, &tokenOptions{}, &tokenCreateOptions{})
}

// tokenCommand is the token command tree writing its flags to opts and create's to co (tests
// read them back).
func tokenCommand(g *globalOptions, opts *tokenOptions, co *tokenCreateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage bootstrap tokens",
		Long: `Manage the bootstrap tokens that let nodes join the cluster.

A bootstrap token ("[a-z0-9]{6}.[a-z0-9]{16}": a public id and a secret) is a Secret
kube-system/bootstrap-token-<id> of type bootstrap.kubernetes.io/token, exactly as kubeadm stores
it, so kubeadm and kubestrap tokens are interchangeable. With the "signing" usage the
controller-manager signs the cluster-info ConfigMap with it, which lets a joining node trust the
cluster; with "authentication" it lets the node authenticate for its TLS bootstrap.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&opts.kubeconfig, "kubeconfig", "", "the kubeconfig file to talk to the cluster with (default <root-dir>/etc/kubernetes/admin.conf)")
	pf.BoolVar(&opts.dryRun, "dry-run", false, "change nothing in the cluster; print what would be done")
	cmd.AddCommand(
		newTokenCreateCommand(g, opts, co),
		newTokenListCommand(g, opts),
		newTokenDeleteCommand(g, opts),
		newTokenGenerateCommand(g),
	)
	return cmd
}

// kubeconfigPath resolves --kubeconfig, defaulting to admin.conf under the root dir.
func (o *tokenOptions) kubeconfigPath(g *globalOptions) (string, error) {
	if o.kubeconfig != "" {
		return o.kubeconfig, nil
	}
	p, err := g.paths()
	if err != nil {
		return "", err
	}
	return p.Kubeconfig("admin.conf"), nil
}

// loadKubeconfig reads the kubeconfig the token commands use.
func (o *tokenOptions) loadKubeconfig(g *globalOptions) (string, *clientcmdapi.Config, error) {
	path, err := o.kubeconfigPath(g)
	if err != nil {
		return "", nil, err
	}
	kc, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("kubeconfig %s not found: run on a control-plane node set up by 'kubestrap init' (with the same --root-dir), or pass --kubeconfig", path)
	}
	if err != nil {
		return "", nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	return path, kc, nil
}

func (o *tokenOptions) client(g *globalOptions) (kubeclient.Interface, *clientcmdapi.Config, error) {
	path, kc, err := o.loadKubeconfig(g)
	if err != nil {
		return nil, nil, err
	}
	c, err := kubeclient.FromKubeconfig(kc, kubeclient.Options{Log: g.Err})
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return c, kc, nil
}

func newTokenCreateCommand(g *globalOptions, opts *tokenOptions, co *tokenCreateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create [token]",
		Short: "Create a bootstrap token on the server",
		Long: `Create a bootstrap token and print it, or with --print-join-command print the whole
'kubestrap join' command line that uses it. [token] is the token to create, of the form
"[a-z0-9]{6}.[a-z0-9]{16}"; without it a random token is generated.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := co.newToken(args, cmd.Flags().Changed("groups"), time.Now())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var line string
			if co.printJoinCommand {
				// Built before the token is stored, so that a kubeconfig without a usable CA or
				// server does not leave an unused token behind.
				path, kc, err := opts.loadKubeconfig(g)
				if err != nil {
					return err
				}
				endpoint, err := clusterEndpoint(ctx, g, path)
				if err != nil {
					return err
				}
				if line, err = joinCommandLine(kc, t.String(), endpoint); err != nil {
					return err
				}
			}
			if opts.dryRun {
				fmt.Fprintf(g.Err, "[dryrun] Would create Secret kube-system/bootstrap-token-%s\n", t.ID)
			} else {
				c, _, err := opts.client(g)
				if err != nil {
					return err
				}
				if err := bootstrap.CreateToken(ctx, c, t); err != nil {
					return err
				}
				if err := bootstrap.SignClusterInfo(ctx, c, t); err != nil {
					return err
				}
			}
			if co.printJoinCommand {
				fmt.Fprintln(g.Out, line)
			} else {
				fmt.Fprintln(g.Out, t.String())
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.DurationVar(&co.ttl, "ttl", bootstrap.DefaultTokenTTL, "The duration before the token is automatically deleted (e.g. 1s, 2m, 3h). If set to '0', the token will never expire")
	fs.StringSliceVar(&co.usages, "usages", bootstrap.DefaultTokenUsages, "Describes the ways in which this token can be used: signing, authentication")
	fs.StringSliceVar(&co.groups, "groups", bootstrap.DefaultTokenGroups, "Extra groups that this token will authenticate as when used for authentication. Must match \"\\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\\z\"")
	fs.StringVar(&co.description, "description", "", "A human friendly description of how this token is used.")
	fs.BoolVar(&co.printJoinCommand, "print-join-command", false, "Instead of printing only the token, print the full 'kubestrap join' command line that joins a worker with it.")
	return cmd
}

// clusterEndpoint is the control-plane endpoint ("host:port") of the cluster's configuration,
// read through the kubeconfig at path, as init's own join command prints it; "" when no
// configuration of the cluster is found, or when the only one there is leaves the endpoint to this
// host's detected address (a kubeadm-config ConfigMap without controlPlaneEndpoint and nothing
// saved by init): the kubeconfig's server is the better guess then.
func clusterEndpoint(ctx context.Context, g *globalOptions, kubeconfig string) (string, error) {
	_, l, err := loadClusterConfig(ctx, g, config.Overrides{}, kubeconfig, "[token]", true)
	if err != nil {
		return "", err
	}
	if l.Config == nil || (l.NodeDetected && l.Config.Cluster.ControlPlaneEndpoint == "") {
		fmt.Fprintf(g.Err, "[token] Using the server of %s as the join endpoint\n", kubeconfig)
		return "", nil
	}
	u, err := url.Parse(l.Config.ControlPlaneURL())
	if err != nil {
		return "", err
	}
	return u.Host, nil
}

// joinCommandLine is the one-line join command for token: the CA comes from the kubeconfig's
// current cluster, pinned by the hash of its public key, and so does the endpoint unless one is
// given.
func joinCommandLine(kc *clientcmdapi.Config, token, endpoint string) (string, error) {
	ctx, ok := kc.Contexts[kc.CurrentContext]
	if !ok {
		return "", fmt.Errorf("the kubeconfig has no current context %q", kc.CurrentContext)
	}
	cl, ok := kc.Clusters[ctx.Cluster]
	if !ok {
		return "", fmt.Errorf("the kubeconfig has no cluster %q", ctx.Cluster)
	}
	if endpoint == "" {
		u, err := url.Parse(cl.Server)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("the kubeconfig's server %q is not a URL", cl.Server)
		}
		endpoint = u.Host
		if _, _, err := net.SplitHostPort(endpoint); err != nil {
			endpoint = net.JoinHostPort(u.Hostname(), "443")
		}
	}
	var err error
	caPEM := cl.CertificateAuthorityData
	if len(caPEM) == 0 && cl.CertificateAuthority != "" {
		if caPEM, err = os.ReadFile(cl.CertificateAuthority); err != nil {
			return "", fmt.Errorf("reading the kubeconfig's CA: %w", err)
		}
	}
	if len(caPEM) == 0 {
		return "", errors.New("the kubeconfig carries no CA certificate, so no --discovery-token-ca-cert-hash can be printed")
	}
	cas, err := certutil.ParseCertsPEM(caPEM)
	if err != nil {
		return "", fmt.Errorf("the kubeconfig's CA cannot be parsed: %w", err)
	}
	return bootstrap.JoinCommand(endpoint, token, pki.PublicKeyPin(cas[0])), nil
}

func newTokenListCommand(g *globalOptions, opts *tokenOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List bootstrap tokens on the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case bootstrap.OutputTable, bootstrap.OutputText, bootstrap.OutputJSON, bootstrap.OutputYAML:
			default:
				return UsageError{fmt.Errorf("unknown output format %q for -o: use table, json or yaml", output)}
			}
			c, _, err := opts.client(g)
			if err != nil {
				return err
			}
			tokens, err := bootstrap.ListTokens(cmd.Context(), c)
			if err != nil {
				return err
			}
			return bootstrap.WriteTokens(g.Out, tokens, output, time.Now())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", bootstrap.OutputTable, "output format: table (kubeadm's text), json or yaml")
	return cmd
}

func newTokenDeleteCommand(g *globalOptions, opts *tokenOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID|TOKEN...",
		Short: "Delete bootstrap tokens on the server",
		Long: `Delete bootstrap tokens, given by id ("[a-z0-9]{6}") or as the whole token
("[a-z0-9]{6}.[a-z0-9]{16}"). Nodes that have joined keep working: they authenticate with their
own certificates, not with the token.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Check every argument first: a typo in the third must not leave the first two
			// deleted and the rest not.
			for _, a := range args {
				if _, err := bootstrap.TokenID(a); err != nil {
					return UsageError{err}
				}
			}
			var c kubeclient.Interface
			if !opts.dryRun {
				var err error
				if c, _, err = opts.client(g); err != nil {
					return err
				}
			}
			for _, a := range args {
				if err := deleteToken(cmd.Context(), g, c, a, opts.dryRun); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func deleteToken(ctx context.Context, g *globalOptions, c kubeclient.Interface, idOrToken string, dryRun bool) error {
	id, err := bootstrap.TokenID(idOrToken)
	if err != nil {
		return UsageError{err}
	}
	if dryRun {
		fmt.Fprintf(g.Err, "[dryrun] Would delete Secret kube-system/bootstrap-token-%s\n", id)
		return nil
	}
	if err := bootstrap.DeleteToken(ctx, c, idOrToken); err != nil {
		return err
	}
	fmt.Fprintf(g.Out, "bootstrap token %q deleted\n", id)
	return nil
}

func newTokenGenerateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Generate and print a bootstrap token, but do not create it on the server",
		Long: `Print a random bootstrap token of the form "[a-z0-9]{6}.[a-z0-9]{16}", generated from a
cryptographically secure source, for 'kubestrap init --token' or 'kubestrap token create'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := bootstrap.GenerateToken()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, t)
			return nil
		},
	}
}
