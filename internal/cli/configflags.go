package cli

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/kubestrap/kubestrap/internal/clusterconfig"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// loadClusterConfig returns the configuration of the cluster under --root-dir, for the commands
// that run after init: --config when given, else the kubeadm-config ConfigMap read through
// kubeconfig ("" = admin.conf under the root) with this node's part from the configuration init
// saved, else that saved file, else the defaults (or, with noDefaults, no configuration). Which
// one was used is said on stderr after prefix.
func loadClusterConfig(ctx context.Context, g *globalOptions, o config.Overrides, kubeconfig, prefix string, noDefaults bool) (paths.Paths, *clusterconfig.Loaded, error) {
	p, err := g.paths()
	if err != nil {
		return paths.Paths{}, nil, err
	}
	l, err := clusterconfig.Load(ctx, clusterconfig.Options{
		ConfigFile: g.ConfigFile,
		Overrides:  o,
		Host:       config.SystemHost{},
		Paths:      p,
		Kubeconfig: kubeconfig,
		NewClient:  g.newClusterClient,
		NoDefaults: noDefaults,
		Log:        g.Err,
		Prefix:     prefix,
	})
	if err != nil {
		return paths.Paths{}, nil, err
	}
	return p, l, nil
}

// addInitConfigFlags registers init's kubeadm-compatible configuration flags. Every flag defaults
// to its zero value, which config.Overrides reads as "not given", so a flag only overrides the
// config file when it is actually passed; the effective defaults are named in the help instead.
func addInitConfigFlags(fs *pflag.FlagSet, o *config.Overrides) {
	fs.StringVar(&o.AdvertiseAddress, "apiserver-advertise-address", "",
		"The IP address the API Server will advertise it's listening on. If not set the default network interface will be used.")
	fs.Int32Var(&o.BindPort, "apiserver-bind-port", 0,
		"Port for the API Server to bind to. (default 6443)")
	fs.StringSliceVar(&o.CertExtraSANs, "apiserver-cert-extra-sans", nil,
		"Optional extra Subject Alternative Names (SANs) to use for the API Server serving certificate. Can be both IP addresses and DNS names.")
	fs.StringVar(&o.ControlPlaneEndpoint, "control-plane-endpoint", "",
		"Specify a stable IP address or DNS name for the control plane.")
	fs.StringVar(&o.NodeName, "node-name", "",
		"Specify the node name. (default: the lower-cased hostname)")
	fs.StringVar(&o.ServiceCIDR, "service-cidr", "",
		"Use alternative range of IP address for service VIPs. (default \""+config.DefaultServiceSubnet+"\")")
	fs.StringVar(&o.PodCIDR, "pod-network-cidr", "",
		"Specify range of IP addresses for the pod network. If set, the control plane will automatically allocate CIDRs for every node.")
	fs.StringVar(&o.DNSDomain, "service-dns-domain", "",
		"Use alternative domain for services, e.g. \"myorg.internal\". (default \""+config.DefaultDNSDomain+"\")")
	fs.StringVar(&o.CertDir, "cert-dir", "",
		"The path where to save and store the certificates. (default \""+paths.DefaultCertificatesDir+"\")")
	fs.StringVar(&o.KubernetesVersion, "kubernetes-version", "",
		"Choose a specific Kubernetes version for the control plane. (default \""+config.BundledKubernetesVersion+"\", the bundled version)")
	fs.StringVar(&o.EncryptionAlgorithm, "encryption-algorithm", "",
		"The algorithm of the keys kubestrap generates: one of "+config.AlgorithmECDSAP256+", "+config.AlgorithmECDSAP384+", "+
			config.AlgorithmRSA2048+", "+config.AlgorithmRSA3072+", "+config.AlgorithmRSA4096+". (default \""+config.DefaultEncryptionAlgorithm+"\")")
}
