package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/copycerts"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
)

func newCertsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Commands related to handling Kubernetes certificates",
		Long: `Commands related to handling the certificates of this control-plane node: report their
expiry and renew the leaf certificates and kubeconfig client certificates with the local CAs.
The certificates are created by "kubestrap init" (or "kubestrap init phase certs").`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCertsCheckExpirationCommand(g), newCertsRenewCommand(g), newCertsCertificateKeyCommand(g))
	return cmd
}

// newCertsCertificateKeyCommand prints a new certificate key, as kubeadm's does: for
// "init --upload-certs --certificate-key" (or InitConfiguration certificateKey).
func newCertsCertificateKeyCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "certificate-key",
		Short: "Print a new certificate key for uploading the control-plane certificates",
		Long: `Print a new random key (32 bytes as 64 hex characters) for "kubestrap init --upload-certs
--certificate-key" or "kubestrap init phase upload-certs --upload-certs --certificate-key": the key
that encrypts the shared certificates in the kube-system/kubeadm-certs Secret, and that
control-plane nodes pass to "kubestrap join --control-plane --certificate-key". Keep it secret.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := copycerts.NewKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, key)
			return nil
		},
	}
}

// certsOptions are the flags both certs subcommands share.
type certsOptions struct {
	certDir string
}

func (o *certsOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.certDir, "cert-dir", "",
		"The path where the certificates are stored (default: certificatesDir of the configuration, \""+paths.DefaultCertificatesDir+"\")")
}

// load returns the paths and the cluster's configuration (see loadClusterConfig).
func (o *certsOptions) load(ctx context.Context, g *globalOptions) (paths.Paths, *config.Config, error) {
	p, l, err := loadClusterConfig(ctx, g, config.Overrides{CertDir: o.certDir}, "", "[certs]", false)
	if err != nil {
		return paths.Paths{}, nil, err
	}
	return p, l.Config, nil
}

func newCertsCheckExpirationCommand(g *globalOptions) *cobra.Command {
	var o certsOptions
	var output string
	cmd := &cobra.Command{
		Use:   "check-expiration",
		Short: "Check certificates expiration for a Kubernetes cluster",
		Long: `Report when each certificate of the local PKI expires: the leaf certificates, the client
certificates embedded in admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf and
csr-approver.conf, and the CAs. A certificate is externally managed when the key of its CA is not on this node;
kubestrap cannot renew it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output); err != nil {
				return err
			}
			p, cfg, err := o.load(cmd.Context(), g)
			if err != nil {
				return err
			}
			certs, cas, err := pki.CheckExpiration(cfg, p)
			if err != nil {
				return err
			}
			return printExpiration(g.Out, output, certs, cas)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table (or text), json or yaml")
	return cmd
}

func checkOutputFormat(output string) error {
	switch output {
	case "table", "text", "json", "yaml":
		return nil
	}
	return UsageError{fmt.Errorf("unknown output format %q: use table, json or yaml", output)}
}

// printExpiration prints kubeadm's table, or its output.kubeadm.k8s.io/v1alpha3 object.
func printExpiration(w io.Writer, output string, certs, cas []pki.CertInfo) error {
	switch output {
	case "json":
		b, err := json.MarshalIndent(pki.ExpirationInfo(certs, cas), "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(pki.ExpirationInfo(certs, cas))
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return pki.WriteExpirationTable(w, certs, cas)
}

func newCertsRenewCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "renew <name>|all",
		Short: "Renew certificates for a Kubernetes cluster",
		Long: `Renew leaf certificates and the client certificates embedded in kubeconfig files, with the
local CAs. A renewed certificate keeps the subject, SANs and usages of the one it replaces and gets a
new key (in the configured encryptionAlgorithm), a new serial and a validity of
certificateValidityPeriod from now. CAs are never renewed, and kubelet.conf is left to the kubelet,
which rotates its own certificate.

Renewal does not restart anything: restart kube-apiserver, kube-controller-manager, kube-scheduler
and etcd afterwards so that they load the new certificates.

Names: all, ` + strings.Join(pki.RenewNames(nil), ", "),
		// Subcommands carry the names; this catches anything else with a helpful message.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			if pki.IsCAName(args[0]) {
				return UsageError{fmt.Errorf("%s is a CA: CAs are not renewed, only the certificates they sign", args[0])}
			}
			return UsageError{fmt.Errorf("unknown certificate %q: use all or one of %s", args[0], strings.Join(pki.RenewNames(nil), ", "))}
		},
	}
	for _, name := range append([]string{"all"}, pki.RenewNames(nil)...) {
		cmd.AddCommand(newCertsRenewNameCommand(g, name))
	}
	return cmd
}

func newCertsRenewNameCommand(g *globalOptions, name string) *cobra.Command {
	var o certsOptions
	var dryRun bool
	short := "Renew the " + pki.RenewLongName(name)
	if name == "all" {
		short = "Renew all available certificates"
	}
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, cfg, err := o.load(cmd.Context(), g)
			if err != nil {
				return err
			}
			var names []string // nil = all
			if name != "all" {
				names = []string{name}
			}
			return pki.Renew(cfg, p, names, pki.Options{Log: g.Err, Files: fsutil.For(dryRun, g.Err)})
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "Don't write any file, just print what would be written")
	return cmd
}
