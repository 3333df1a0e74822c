package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kubestrap/kubestrap/internal/config"
)

// Phase names of the certificates, kubeadm's (`kubeadm init phase certs <name>`).
const (
	CA                     = "ca"
	APIServer              = "apiserver"
	APIServerKubeletClient = "apiserver-kubelet-client"
	FrontProxyCA           = "front-proxy-ca"
	FrontProxyClient       = "front-proxy-client"
	EtcdCA                 = "etcd-ca"
	EtcdServer             = "etcd-server"
	EtcdPeer               = "etcd-peer"
	EtcdHealthcheckClient  = "etcd-healthcheck-client"
	APIServerEtcdClient    = "apiserver-etcd-client"
	ServiceAccount         = "sa"
)

// Service-account key file names.
const (
	SAKeyFile = "sa.key"
	SAPubFile = "sa.pub"
)

// CertSpec is one certificate of the cluster PKI, resolved against a configuration.
type CertSpec struct {
	// Name is the phase name ("etcd-server").
	Name string
	// BaseName is the file name without extension, relative to the certificates dir ("etcd/server").
	BaseName string
	// LongName is kubeadm's description, used in renewal messages.
	LongName string
	// CAName is the Name of the signing CA; empty for a CA.
	CAName string
	// Etcd marks the certificates that exist only with a local etcd.
	Etcd bool

	CommonName   string
	Organization []string
	Usages       []x509.ExtKeyUsage
	AltNames     certutil.AltNames
}

// IsCA reports whether the spec is a self-signed CA.
func (s CertSpec) IsCA() bool { return s.CAName == "" }

// CertFile and KeyFile are the file names relative to the certificates dir.
func (s CertSpec) CertFile() string { return s.BaseName + ".crt" }
func (s CertSpec) KeyFile() string  { return s.BaseName + ".key" }

// static is the configuration-independent part of every certificate, in kubeadm's order. The
// identities are fixed by what the components check: the apiserver authorises the kubelet client
// and etcd client by CN, and none of them may carry system:masters.
var static = []CertSpec{
	{Name: CA, BaseName: "ca", CommonName: "kubernetes",
		LongName: "self-signed Kubernetes CA to provision identities for other Kubernetes components"},
	{Name: APIServer, BaseName: "apiserver", CAName: CA, CommonName: "kube-apiserver",
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		LongName: "certificate for serving the Kubernetes API"},
	{Name: APIServerKubeletClient, BaseName: "apiserver-kubelet-client", CAName: CA, CommonName: "kube-apiserver-kubelet-client",
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		LongName: "certificate for the API server to connect to kubelet"},
	{Name: FrontProxyCA, BaseName: "front-proxy-ca", CommonName: "front-proxy-ca",
		LongName: "self-signed CA to provision identities for front proxy"},
	{Name: FrontProxyClient, BaseName: "front-proxy-client", CAName: FrontProxyCA, CommonName: "front-proxy-client",
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		LongName: "certificate for the front proxy client"},
	{Name: EtcdCA, BaseName: "etcd/ca", Etcd: true, CommonName: "etcd-ca",
		LongName: "self-signed CA to provision identities for etcd"},
	{Name: EtcdServer, BaseName: "etcd/server", CAName: EtcdCA, Etcd: true,
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		LongName: "certificate for serving etcd"},
	{Name: EtcdPeer, BaseName: "etcd/peer", CAName: EtcdCA, Etcd: true,
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		LongName: "certificate for etcd nodes to communicate with each other"},
	{Name: EtcdHealthcheckClient, BaseName: "etcd/healthcheck-client", CAName: EtcdCA, Etcd: true, CommonName: "kube-etcd-healthcheck-client",
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		LongName: "certificate for liveness probes to healthcheck etcd"},
	{Name: APIServerEtcdClient, BaseName: "apiserver-etcd-client", CAName: EtcdCA, Etcd: true, CommonName: "kube-apiserver-etcd-client",
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		LongName: "certificate the apiserver uses to access etcd"},
}

// CertNames lists the phase names of the certificates (and "sa") this configuration needs, in
// kubeadm's order; the etcd ones are left out when etcd is external. A nil configuration gives
// the full list (local etcd), for building command trees before any configuration is loaded.
func CertNames(cfg *config.Config) []string {
	var out []string
	for _, s := range static {
		if s.Etcd && cfg != nil && !cfg.LocalEtcd() {
			continue
		}
		out = append(out, s.Name)
	}
	return append(out, ServiceAccount)
}

// CertSpecs resolves every certificate of the configuration (identities and SANs), in kubeadm's
// order, without "sa". Invalid extra SANs are dropped; warn receives one line per dropped entry.
func CertSpecs(cfg *config.Config, warn func(string)) ([]CertSpec, error) {
	return certSpecs(cfg, func(_, msg string) {
		if warn != nil {
			warn(msg)
		}
	})
}

// certSpecs is CertSpecs with warnings attributed to the certificate they concern, so that a run
// for some certificates reports only their warnings.
func certSpecs(cfg *config.Config, warnFor func(name, msg string)) ([]CertSpec, error) {
	var out []CertSpec
	for _, s := range static {
		if s.Etcd && !cfg.LocalEtcd() {
			continue
		}
		warn := func(msg string) { warnFor(s.Name, msg) }
		s.Usages = append([]x509.ExtKeyUsage(nil), s.Usages...)
		switch s.Name {
		case APIServer:
			alt, err := apiServerAltNames(cfg, warn)
			if err != nil {
				return nil, err
			}
			s.AltNames = alt
		case EtcdServer, EtcdPeer:
			s.CommonName = cfg.NodeName()
			var extra []string
			if l := cfg.Cluster.Etcd.Local; l != nil {
				extra = l.ServerCertSANs
				if s.Name == EtcdPeer {
					extra = l.PeerCertSANs
				}
			}
			alt, err := etcdAltNames(cfg, extra, s.Name, warn)
			if err != nil {
				return nil, err
			}
			s.AltNames = alt
		}
		if s.IsCA() {
			s.AltNames = certutil.AltNames{DNSNames: []string{s.CommonName}}
		}
		out = append(out, s)
	}
	return out, nil
}

// altNames accumulates SANs without duplicates, lower-casing DNS names (DNS is case-insensitive
// and kubeadm lower-cases them, so "Node1" and "node1" are one SAN).
type altNames struct {
	dns []string
	ips []net.IP
}

func (a *altNames) addDNS(name string) {
	name = strings.ToLower(name)
	for _, d := range a.dns {
		if d == name {
			return
		}
	}
	a.dns = append(a.dns, name)
}

func (a *altNames) addIP(ip net.IP) {
	for _, have := range a.ips {
		if have.Equal(ip) {
			return
		}
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	a.ips = append(a.ips, ip)
}

// addHost adds an IP or a DNS name.
func (a *altNames) addHost(h string) {
	if ip := net.ParseIP(h); ip != nil {
		a.addIP(ip)
		return
	}
	a.addDNS(h)
}

// addExtra adds user-provided SANs: IPs, RFC 1123 names and wildcard names. Anything else is
// dropped with a warning, as kubeadm does, rather than producing a certificate nobody can match.
func (a *altNames) addExtra(sans []string, field string, warn func(string)) {
	for _, s := range sans {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			a.addIP(ip)
			continue
		}
		l := strings.ToLower(s)
		if len(validation.IsDNS1123Subdomain(l)) == 0 || len(validation.IsWildcardDNS1123Subdomain(l)) == 0 {
			a.addDNS(l)
			continue
		}
		warn(fmt.Sprintf("[certs] WARNING: ignoring %s entry %q: it is neither an IP address nor a valid DNS name", field, s))
	}
}

func (a *altNames) result() certutil.AltNames {
	return certutil.AltNames{DNSNames: a.dns, IPs: a.ips}
}

func advertiseIP(cfg *config.Config) (net.IP, error) {
	ip := net.ParseIP(cfg.AdvertiseAddress())
	if ip == nil {
		return nil, fmt.Errorf("localAPIEndpoint.advertiseAddress %q is not an IP address", cfg.AdvertiseAddress())
	}
	return ip, nil
}

// apiServerAltNames are the names clients reach the apiserver by: the node, the in-cluster
// Service (by every DNS form and its VIP), the advertise address, the control-plane endpoint and
// the operator's extra certSANs.
func apiServerAltNames(cfg *config.Config, warn func(string)) (certutil.AltNames, error) {
	adv, err := advertiseIP(cfg)
	if err != nil {
		return certutil.AltNames{}, err
	}
	vip, err := cfg.ServiceIP(1)
	if err != nil {
		return certutil.AltNames{}, err
	}
	domain := cfg.Cluster.Networking.DNSDomain
	if domain == "" {
		return certutil.AltNames{}, fmt.Errorf("networking.dnsDomain is empty")
	}
	var a altNames
	for _, d := range []string{cfg.NodeName(), "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + domain} {
		a.addDNS(d)
	}
	a.addIP(vip)
	a.addIP(adv)
	if h := cfg.ControlPlaneEndpointHost(); h != "" {
		a.addHost(h)
	}
	a.addExtra(cfg.Cluster.APIServer.CertSANs, "apiServer.certSANs", warn)
	return a.result(), nil
}

// etcdAltNames let etcd be reached by node name and loopback, which is how the apiserver of the
// same node and the etcd health probes address it.
func etcdAltNames(cfg *config.Config, extra []string, name string, warn func(string)) (certutil.AltNames, error) {
	adv, err := advertiseIP(cfg)
	if err != nil {
		return certutil.AltNames{}, err
	}
	var a altNames
	a.addDNS(cfg.NodeName())
	a.addDNS("localhost")
	a.addIP(adv)
	a.addIP(net.IPv4(127, 0, 0, 1))
	a.addIP(net.IPv6loopback)
	field := "etcd.local.serverCertSANs"
	if name == EtcdPeer {
		field = "etcd.local.peerCertSANs"
	}
	a.addExtra(extra, field, warn)
	return a.result(), nil
}

// specByName finds a resolved spec.
func specByName(specs []CertSpec, name string) (CertSpec, bool) {
	for _, s := range specs {
		if s.Name == name {
			return s, true
		}
	}
	return CertSpec{}, false
}
