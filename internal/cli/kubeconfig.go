package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/pki"
)

func newKubeconfigCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Kubeconfig file utilities",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(kubeconfigUserCommand(g, &kubeconfigUserOptions{}))
	return cmd
}

// kubeconfigUserOptions are the flags of `kubeconfig user`, kubeadm's.
type kubeconfigUserOptions struct {
	clientName string
	orgs       []string
	token      string
	validity   time.Duration
	certDir    string
}

// validate refuses what the flags cannot mean, before anything is read.
func (o *kubeconfigUserOptions) validate() error {
	if o.clientName == "" {
		return UsageError{errors.New("--client-name is required")}
	}
	if o.validity < 0 {
		return UsageError{fmt.Errorf("--validity-period %s must be positive", o.validity)}
	}
	return nil
}

// kubeconfigUserCommand is `kubeconfig user` writing its flags to o (tests read them back).
func kubeconfigUserCommand(g *globalOptions, o *kubeconfigUserOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Output a kubeconfig file for an additional user",
		Long: `Print a kubeconfig file for an additional user to standard output. The user authenticates
with a client certificate signed by the cluster CA (ca.crt/ca.key must be on this node) or, with
--token, with a token. The server is the control-plane endpoint of the configuration.`,
		Example: `  # A kubeconfig for user "jane" in group "devs", valid for 30 days:
  kubestrap kubeconfig user --client-name=jane --org=devs --validity-period=720h > jane.conf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			c, err := runKubeconfigUser(cmd.Context(), g, *o)
			if err != nil {
				return err
			}
			data, err := clientcmd.Write(*c)
			if err != nil {
				return err
			}
			_, err = g.Out.Write(data)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.clientName, "client-name", "", "The name of the user. It is used as the CN of the client certificate (required)")
	f.StringSliceVar(&o.orgs, "org", nil, "The organizations (groups) of the client certificate. Repeat the flag or separate with commas")
	f.StringVar(&o.token, "token", "", "The token to authenticate with instead of a client certificate")
	f.DurationVar(&o.validity, "validity-period", 0, "The validity period of the client certificate, e.g. 8760h (default: certificateValidityPeriod of the configuration, 8760h)")
	f.StringVar(&o.certDir, "cert-dir", "", "The path where the CA certificate and key are stored (default: certificatesDir of the configuration)")
	return cmd
}

// runKubeconfigUser builds the kubeconfig; it writes nothing.
func runKubeconfigUser(ctx context.Context, g *globalOptions, o kubeconfigUserOptions) (*clientcmdapi.Config, error) {
	p, l, err := loadClusterConfig(ctx, g, config.Overrides{CertDir: o.certDir}, "", "[kubeconfig]", false)
	if err != nil {
		return nil, err
	}
	cfg := l.Config
	server, clusterName := cfg.ControlPlaneURL(), cfg.Cluster.ClusterName
	if o.token != "" {
		caPath := filepath.Join(p.CertDir(cfg.Cluster.CertificatesDir), "ca.crt")
		caPEM, err := os.ReadFile(caPath)
		if err != nil {
			return nil, fmt.Errorf("reading the cluster CA: %w", err)
		}
		if _, err := pki.ParseCertPEM(caPEM); err != nil {
			return nil, fmt.Errorf("%s: %w", caPath, err)
		}
		return kubeconfig.TokenConfig(server, caPEM, clusterName, o.clientName, o.token), nil
	}
	caCert, caKey, err := pki.LoadCA(p, cfg)
	if err != nil {
		return nil, err
	}
	validity := o.validity
	if validity == 0 {
		validity = cfg.CertValidity()
	}
	return kubeconfig.ClientConfig(caCert, caKey, server, clusterName, o.clientName, o.orgs, validity, pki.KeyAlgorithm(cfg))
}
