package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/version"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// Limits kubeadm applies to the networks (its constants; reference §10).
const (
	// maxServiceSubnetHostBits keeps the apiserver's service IP allocator bitmap small.
	maxServiceSubnetHostBits    = 20
	minServiceSubnetAddresses   = 10
	minPodSubnetAddresses       = 14
	maxPodSubnetNodeMaskDiff    = 16
	defaultNodeCIDRMaskSizeIPv4 = 24
	defaultNodeCIDRMaskSizeIPv6 = 64
	// certificateKeyBytes is the size of the AES key that encrypts uploaded certificates.
	certificateKeyBytes = 32
)

// Validate checks a defaulted configuration and returns an *Error listing every problem, or nil.
// Paths in InitConfiguration and ClusterConfiguration are kubeadm's (`networking.serviceSubnet`);
// paths in the kubestrap document start with "KubestrapConfiguration." because its field names
// (etcd, controllerManager, scheduler) would otherwise read like ClusterConfiguration's. An empty
// bootstrap token is accepted: EnsureBootstrapToken fills it in.
func Validate(c *Config) error {
	return newError("", toErrors(validateConfig(c)))
}

func validateConfig(c *Config) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateInit(&c.Init)...)
	errs = append(errs, validateCluster(&c.Cluster)...)
	errs = append(errs, validateKubestrap(&c.Kubestrap, field.NewPath(KindKubestrap))...)
	errs = append(errs, validatePortConflicts(c)...)
	return errs
}

func toErrors(list field.ErrorList) []error {
	out := make([]error, 0, len(list))
	for _, e := range list {
		out = append(out, e)
	}
	return out
}

func validateInit(in *InitConfiguration) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateBootstrapTokens(in.BootstrapTokens, field.NewPath("bootstrapTokens"))...)
	errs = append(errs, validateNodeRegistration(&in.NodeRegistration, field.NewPath("nodeRegistration"))...)
	errs = append(errs, validateAPIEndpoint(&in.LocalAPIEndpoint, field.NewPath("localAPIEndpoint"))...)
	errs = append(errs, validateCertificateKey(in.CertificateKey, field.NewPath("certificateKey"))...)
	errs = append(errs, validatePatches(in.Patches, field.NewPath("patches"))...)
	errs = append(errs, validateTimeouts(in.Timeouts, field.NewPath("timeouts"))...)
	return errs
}

func validateBootstrapTokens(tokens []BootstrapToken, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	ids := map[string]int{}
	for i, t := range tokens {
		tp := p.Index(i)
		if t.Token != "" {
			errs = append(errs, validateToken(t.Token, tp.Child("token"))...)
			if id, _, ok := strings.Cut(t.Token, "."); ok && bootstraputil.IsValidBootstrapToken(t.Token) {
				if j, dup := ids[id]; dup {
					errs = append(errs, field.Duplicate(tp.Child("token"), fmt.Sprintf("token ID %s (also bootstrapTokens[%d])", id, j)))
				}
				ids[id] = i
			}
		}
		if t.TTL != nil && t.Expires != nil {
			errs = append(errs, field.Invalid(tp, "", "ttl and expires are mutually exclusive"))
		}
		errs = append(errs, nonNegative(t.TTL, tp.Child("ttl"))...)
		if err := bootstraputil.ValidateUsages(t.Usages); err != nil {
			errs = append(errs, field.Invalid(tp.Child("usages"), t.Usages, err.Error()))
		}
		if len(t.Groups) > 0 && !slices.Contains(t.Usages, "authentication") {
			errs = append(errs, field.Invalid(tp.Child("groups"), t.Groups, `groups need the "authentication" usage`))
		}
		for j, g := range t.Groups {
			if err := bootstraputil.ValidateBootstrapGroupName(g); err != nil {
				errs = append(errs, field.Invalid(tp.Child("groups").Index(j), g, err.Error()))
			}
		}
	}
	return errs
}

// validateToken checks the "[a-z0-9]{6}.[a-z0-9]{16}" format. The value is not echoed: a malformed
// token may still be most of a real secret.
func validateToken(tok string, p *field.Path) field.ErrorList {
	if tok == "" {
		return field.ErrorList{field.Required(p, `a bootstrap token of the form "[a-z0-9]{6}.[a-z0-9]{16}"`)}
	}
	if !bootstraputil.IsValidBootstrapToken(tok) {
		return field.ErrorList{field.Invalid(p, RedactToken(tok), `a bootstrap token must have the form "[a-z0-9]{6}.[a-z0-9]{16}"`)}
	}
	return nil
}

// RedactToken is how a token the user typed appears in an error or a log line, in every
// command: its id when the part before the dot is a well-formed id ("abcdef.<redacted>"),
// otherwise nothing of it. A malformed token may still be most of a real secret (a dot left out,
// a character mistyped), so only what is public anyway, the id, is ever shown.
func RedactToken(tok string) string {
	if id, _, ok := strings.Cut(tok, "."); ok && bootstraputil.IsValidBootstrapTokenID(id) {
		return id + ".<redacted>"
	}
	return fmt.Sprintf("<redacted, %d characters>", len(tok))
}

func validateNodeRegistration(n *NodeRegistration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if n.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "set --node-name or nodeRegistration.name"))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(n.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), n.Name, msg))
		}
	}
	errs = append(errs, validateCRISocket(n.CRISocket, p.Child("criSocket"))...)
	for i, t := range n.Taints {
		tp := p.Child("taints").Index(i)
		for _, msg := range content.IsLabelKey(t.Key) {
			errs = append(errs, field.Invalid(tp.Child("key"), t.Key, msg))
		}
		for _, msg := range content.IsLabelValue(t.Value) {
			errs = append(errs, field.Invalid(tp.Child("value"), t.Value, msg))
		}
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			errs = append(errs, field.NotSupported(tp.Child("effect"), t.Effect,
				[]corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}))
		}
	}
	errs = append(errs, validateExtraArgs(n.KubeletExtraArgs, p.Child("kubeletExtraArgs"))...)
	if len(n.IgnorePreflightErrors) > 1 {
		for i, s := range n.IgnorePreflightErrors {
			if strings.EqualFold(s, "all") {
				errs = append(errs, field.Invalid(p.Child("ignorePreflightErrors").Index(i), s, `"all" already ignores every check: list either "all" or individual checks`))
			}
		}
	}
	switch n.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, field.NotSupported(p.Child("imagePullPolicy"), n.ImagePullPolicy,
			[]corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}))
	}
	return errs
}

// validateCRISocket accepts an empty socket: local and systemd modes need no container runtime.
func validateCRISocket(s string, p *field.Path) field.ErrorList {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "unix" || !path.IsAbs(u.Path) {
		return field.ErrorList{field.Invalid(p, s, `must be a unix socket URL such as "unix:///var/run/containerd/containerd.sock"`)}
	}
	return nil
}

func validateAPIEndpoint(e *APIEndpoint, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateAdvertiseAddress(e.AdvertiseAddress, p.Child("advertiseAddress"))...)
	errs = append(errs, validatePort(e.BindPort, p.Child("bindPort"))...)
	return errs
}

func validateAdvertiseAddress(a string, p *field.Path) field.ErrorList {
	if a == "" {
		return field.ErrorList{field.Required(p, "set --apiserver-advertise-address or localAPIEndpoint.advertiseAddress")}
	}
	ip := net.ParseIP(a)
	switch {
	case ip == nil:
		return field.ErrorList{field.Invalid(p, a, "must be an IP address")}
	case ip.IsUnspecified():
		return field.ErrorList{field.Invalid(p, a, "must be a concrete address other nodes can reach, not the unspecified address")}
	case ip.IsMulticast():
		return field.ErrorList{field.Invalid(p, a, "must be a unicast address")}
	}
	return nil
}

func validatePort(port int32, p *field.Path) field.ErrorList {
	for _, msg := range validation.IsValidPortNum(int(port)) {
		return field.ErrorList{field.Invalid(p, port, msg)}
	}
	return nil
}

func validateCertificateKey(k string, p *field.Path) field.ErrorList {
	if k == "" {
		return nil
	}
	b, err := hex.DecodeString(k)
	if err != nil || len(b) != certificateKeyBytes {
		return field.ErrorList{field.Invalid(p, "<redacted>", fmt.Sprintf("must be a hex-encoded %d-byte AES key (%d hex digits)", certificateKeyBytes, 2*certificateKeyBytes))}
	}
	return nil
}

func validatePatches(pt *Patches, p *field.Path) field.ErrorList {
	if pt == nil || pt.Directory == "" {
		return nil
	}
	return validateAbsPath(pt.Directory, p.Child("directory"))
}

func validateTimeouts(t *Timeouts, p *field.Path) field.ErrorList {
	if t == nil {
		return nil
	}
	var errs field.ErrorList
	errs = append(errs, nonNegative(t.ControlPlaneComponentHealthCheck, p.Child("controlPlaneComponentHealthCheck"))...)
	errs = append(errs, nonNegative(t.KubeletHealthCheck, p.Child("kubeletHealthCheck"))...)
	errs = append(errs, nonNegative(t.KubernetesAPICall, p.Child("kubernetesAPICall"))...)
	errs = append(errs, nonNegative(t.EtcdAPICall, p.Child("etcdAPICall"))...)
	errs = append(errs, nonNegative(t.TLSBootstrap, p.Child("tlsBootstrap"))...)
	errs = append(errs, nonNegative(t.Discovery, p.Child("discovery"))...)
	errs = append(errs, nonNegative(t.UpgradeManifests, p.Child("upgradeManifests"))...)
	return errs
}

func nonNegative(d *metav1.Duration, p *field.Path) field.ErrorList {
	if d != nil && d.Duration < 0 {
		return field.ErrorList{field.Invalid(p, d.Duration.String(), "must not be negative")}
	}
	return nil
}

func positive(d *metav1.Duration, p *field.Path) field.ErrorList {
	if d != nil && d.Duration <= 0 {
		return field.ErrorList{field.Invalid(p, d.Duration.String(), "must be positive")}
	}
	return nil
}

func validateCluster(c *ClusterConfiguration) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateEtcd(&c.Etcd, field.NewPath("etcd"))...)
	errs = append(errs, validateNetworking(c, field.NewPath("networking"))...)
	errs = append(errs, validateKubernetesVersion(c.KubernetesVersion, field.NewPath("kubernetesVersion"))...)
	errs = append(errs, validateHostPort(c.ControlPlaneEndpoint, false, field.NewPath("controlPlaneEndpoint"))...)
	apiServer := field.NewPath("apiServer")
	errs = append(errs, validateComponent(&c.APIServer.ControlPlaneComponent, apiServer)...)
	errs = append(errs, validateCertSANs(c.APIServer.CertSANs, apiServer.Child("certSANs"))...)
	errs = append(errs, validateComponent(&c.ControllerManager, field.NewPath("controllerManager"))...)
	errs = append(errs, validateComponent(&c.Scheduler, field.NewPath("scheduler"))...)
	if c.DNS.ImageRepository != "" {
		errs = append(errs, validateImageRepository(c.DNS.ImageRepository, field.NewPath("dns", "imageRepository"))...)
	}
	errs = append(errs, validateAbsPath(c.CertificatesDir, field.NewPath("certificatesDir"))...)
	errs = append(errs, validateImageRepository(c.ImageRepository, field.NewPath("imageRepository"))...)
	if c.ClusterName == "" {
		errs = append(errs, field.Required(field.NewPath("clusterName"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(c.ClusterName) {
			errs = append(errs, field.Invalid(field.NewPath("clusterName"), c.ClusterName, msg))
		}
	}
	switch c.EncryptionAlgorithm {
	case AlgorithmRSA2048, AlgorithmRSA3072, AlgorithmRSA4096, AlgorithmECDSAP256, AlgorithmECDSAP384:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("encryptionAlgorithm"), c.EncryptionAlgorithm,
			[]string{AlgorithmECDSAP256, AlgorithmECDSAP384, AlgorithmRSA2048, AlgorithmRSA3072, AlgorithmRSA4096}))
	}
	errs = append(errs, positive(c.CertificateValidityPeriod, field.NewPath("certificateValidityPeriod"))...)
	errs = append(errs, positive(c.CACertificateValidityPeriod, field.NewPath("caCertificateValidityPeriod"))...)
	return errs
}

func validateEtcd(e *Etcd, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case e.Local == nil && e.External == nil:
		return field.ErrorList{field.Required(p, "either etcd.local or etcd.external")}
	case e.Local != nil && e.External != nil:
		return field.ErrorList{field.Forbidden(p, "etcd.local and etcd.external are mutually exclusive")}
	}
	if l := e.Local; l != nil {
		lp := p.Child("local")
		errs = append(errs, validateAbsPath(l.DataDir, lp.Child("dataDir"))...)
		errs = append(errs, validateExtraArgs(l.ExtraArgs, lp.Child("extraArgs"))...)
		errs = append(errs, validateExtraEnvs(l.ExtraEnvs, lp.Child("extraEnvs"))...)
		errs = append(errs, validateCertSANs(l.ServerCertSANs, lp.Child("serverCertSANs"))...)
		errs = append(errs, validateCertSANs(l.PeerCertSANs, lp.Child("peerCertSANs"))...)
		if l.ImageRepository != "" {
			errs = append(errs, validateImageRepository(l.ImageRepository, lp.Child("imageRepository"))...)
		}
	}
	if x := e.External; x != nil {
		xp := p.Child("external")
		tls := x.CAFile != "" || x.CertFile != "" || x.KeyFile != ""
		if (x.CertFile == "") != (x.KeyFile == "") {
			errs = append(errs, field.Invalid(xp, "", "set both certFile and keyFile, or neither"))
		}
		if x.CertFile != "" && x.CAFile == "" {
			errs = append(errs, field.Required(xp.Child("caFile"), "a client certificate needs the CA that verifies the etcd servers"))
		}
		for _, f := range []struct{ name, path string }{{"caFile", x.CAFile}, {"certFile", x.CertFile}, {"keyFile", x.KeyFile}} {
			if f.path != "" {
				errs = append(errs, validateAbsPath(f.path, xp.Child(f.name))...)
			}
		}
		if len(x.Endpoints) == 0 {
			errs = append(errs, field.Required(xp.Child("endpoints"), "at least one etcd endpoint URL"))
		}
		errs = append(errs, validateURLs(x.Endpoints, tls, xp.Child("endpoints"))...)
		errs = append(errs, validateURLs(x.HTTPEndpoints, false, xp.Child("httpEndpoints"))...)
	}
	return errs
}

// validateURLs accepts http and https URLs with a host; https only when TLS files are given, since
// etcd would otherwise receive the client certificate in clear text.
func validateURLs(urls []string, httpsOnly bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range urls {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p.Index(i), s, err.Error()))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, field.Invalid(p.Index(i), s, `must be a URL with scheme "https" or "http", such as "https://10.0.0.5:2379"`))
		case u.Host == "":
			errs = append(errs, field.Invalid(p.Index(i), s, "the URL has no host"))
		case httpsOnly && u.Scheme != "https":
			errs = append(errs, field.Invalid(p.Index(i), s, `must use https when caFile, certFile or keyFile are set`))
		}
	}
	return errs
}

func validateNetworking(c *ClusterConfiguration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := c.Networking
	sp, pp := p.Child("serviceSubnet"), p.Child("podSubnet")
	var services, pods []netip.Prefix
	if n.ServiceSubnet == "" {
		errs = append(errs, field.Required(sp, "for example 10.96.0.0/12"))
	} else {
		var e field.ErrorList
		services, e = parseCIDRs(n.ServiceSubnet, minServiceSubnetAddresses, sp)
		errs = append(errs, e...)
		for _, s := range services {
			if hostBits := s.Addr().BitLen() - s.Bits(); hostBits > maxServiceSubnetHostBits {
				errs = append(errs, field.Invalid(sp, s.String(), fmt.Sprintf("too large: at most %d host bits (a /%d or smaller for %d-bit addresses)",
					maxServiceSubnetHostBits, s.Addr().BitLen()-maxServiceSubnetHostBits, s.Addr().BitLen())))
			}
		}
	}
	if n.PodSubnet != "" {
		var e field.ErrorList
		pods, e = parseCIDRs(n.PodSubnet, minPodSubnetAddresses, pp)
		errs = append(errs, e...)
		if argValue(c.ControllerManager.ExtraArgs, "allocate-node-cidrs") != "false" {
			errs = append(errs, validateNodeMasks(pods, c.ControllerManager.ExtraArgs, pp)...)
		}
	}
	for _, s := range services {
		for _, pod := range pods {
			if s.Overlaps(pod) {
				errs = append(errs, field.Invalid(pp, pod.String(), fmt.Sprintf("overlaps the service subnet %s", s)))
			}
		}
	}
	if n.DNSDomain == "" {
		errs = append(errs, field.Required(p.Child("dnsDomain"), "for example cluster.local"))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(n.DNSDomain) {
			errs = append(errs, field.Invalid(p.Child("dnsDomain"), n.DNSDomain, msg))
		}
	}
	return errs
}

// parseCIDRs parses a comma-separated list: one CIDR, or one IPv4 and one IPv6 CIDR for
// dual-stack. The standard library's parser is used on purpose: it rejects the leading zeros
// that the apiserver would later reject too.
func parseCIDRs(list string, minAddrs int, p *field.Path) ([]netip.Prefix, field.ErrorList) {
	var (
		out  []netip.Prefix
		errs field.ErrorList
	)
	entries := strings.Split(list, ",")
	for _, s := range entries {
		s = strings.TrimSpace(s)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, field.Invalid(p, s, "must be a CIDR such as 10.96.0.0/12 or fd00:10:96::/108"))
			continue
		}
		if hostBits := pfx.Addr().BitLen() - pfx.Bits(); hostBits < 31 && 1<<hostBits < minAddrs {
			errs = append(errs, field.Invalid(p, s, fmt.Sprintf("too small: it has %d addresses, the minimum is %d", 1<<hostBits, minAddrs)))
		}
		out = append(out, pfx)
	}
	switch {
	case len(entries) > 2:
		errs = append(errs, field.Invalid(p, list, "expected one CIDR, or two (one IPv4, one IPv6) for dual-stack"))
	case len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4():
		errs = append(errs, field.Invalid(p, list, "a dual-stack pair needs one IPv4 and one IPv6 CIDR"))
	}
	return out, errs
}

// validateNodeMasks applies kubeadm's rule that the pod subnet must hold at least one and at most
// 2^16 node subnets of the controller-manager's node CIDR mask size.
func validateNodeMasks(pods []netip.Prefix, kcmArgs []Arg, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, pod := range pods {
		arg, nodeMask := "node-cidr-mask-size-ipv4", defaultNodeCIDRMaskSizeIPv4
		if !pod.Addr().Is4() {
			arg, nodeMask = "node-cidr-mask-size-ipv6", defaultNodeCIDRMaskSizeIPv6
		}
		if v := argValue(kcmArgs, arg); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, field.Invalid(field.NewPath("controllerManager", "extraArgs"), arg+"="+v, "must be an integer"))
				continue
			}
			nodeMask = n
		}
		switch {
		case pod.Bits() > nodeMask:
			errs = append(errs, field.Invalid(p, pod.String(), fmt.Sprintf("smaller than one node's pod range (/%d)", nodeMask)))
		case nodeMask-pod.Bits() > maxPodSubnetNodeMaskDiff:
			errs = append(errs, field.Invalid(p, pod.String(), fmt.Sprintf("too large: the mask may be at most %d bits shorter than the node mask /%d", maxPodSubnetNodeMaskDiff, nodeMask)))
		}
	}
	return errs
}

// argValue is the value of the last extraArgs entry named name (the one a component would see).
func argValue(args []Arg, name string) string {
	v := ""
	for _, a := range args {
		if a.Name == name {
			v = a.Value
		}
	}
	return v
}

func validateKubernetesVersion(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "for example "+BundledKubernetesVersion)}
	}
	ver, err := version.ParseSemantic(v)
	if err != nil || !strings.HasPrefix(v, "v") {
		return field.ErrorList{field.Invalid(p, v, fmt.Sprintf("must be a release version such as %s (labels like stable-1 are not resolved)", BundledKubernetesVersion))}
	}
	minV := version.MustParseSemantic(MinimumKubernetesVersion)
	bundled := version.MustParseSemantic(BundledKubernetesVersion)
	if ver.LessThan(minV) || ver.Major() != bundled.Major() || ver.Minor() > bundled.Minor() {
		return field.ErrorList{field.Invalid(p, v, fmt.Sprintf("kubestrap deploys v%d.%d.x and v%d.%d.x (it bundles %s)",
			minV.Major(), minV.Minor(), bundled.Major(), bundled.Minor(), BundledKubernetesVersion))}
	}
	return nil
}

// validateHostPort checks "host" or "host:port" (needPort: the port is mandatory), where host is an
// IP address or a DNS-1123 subdomain.
func validateHostPort(ep string, needPort bool, p *field.Path) field.ErrorList {
	if ep == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		if needPort {
			return field.ErrorList{field.Invalid(p, ep, "must be host:port, such as 192.168.0.10:6443")}
		}
		host, port = strings.TrimSuffix(strings.TrimPrefix(ep, "["), "]"), ""
	}
	var errs field.ErrorList
	if err == nil || port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || len(validation.IsValidPortNum(n)) > 0 {
			errs = append(errs, field.Invalid(p, ep, fmt.Sprintf("port %q must be a number between 1 and 65535", port)))
		}
	}
	if net.ParseIP(host) == nil && len(validation.IsDNS1123Subdomain(host)) > 0 {
		errs = append(errs, field.Invalid(p, ep, fmt.Sprintf("host %q must be an IP address or a DNS name (lower-case RFC 1123 subdomain)", host)))
	}
	return errs
}

func validateComponent(c *ControlPlaneComponent, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateExtraArgs(c.ExtraArgs, p.Child("extraArgs"))...)
	errs = append(errs, validateExtraVolumes(c.ExtraVolumes, p.Child("extraVolumes"))...)
	errs = append(errs, validateExtraEnvs(c.ExtraEnvs, p.Child("extraEnvs"))...)
	return errs
}

// validateExtraArgs checks that names are bare flag names: the components' argument builder adds
// the "--" itself, so "--v" would become "----v".
func validateExtraArgs(args []Arg, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, a := range args {
		np := p.Index(i).Child("name")
		switch {
		case a.Name == "":
			errs = append(errs, field.Required(np, "the flag name without leading dashes"))
		case strings.HasPrefix(a.Name, "-"):
			errs = append(errs, field.Invalid(np, a.Name, fmt.Sprintf("write the flag name without leading dashes (%q)", strings.TrimLeft(a.Name, "-"))))
		case strings.ContainsAny(a.Name, "= \t\n"):
			errs = append(errs, field.Invalid(np, a.Name, `must be a bare flag name: put the value in "value"`))
		}
	}
	return errs
}

func validateExtraVolumes(vols []HostPathMount, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, v := range vols {
		vp := p.Index(i)
		if v.Name == "" {
			errs = append(errs, field.Required(vp.Child("name"), ""))
		} else {
			for _, msg := range validation.IsDNS1123Label(v.Name) {
				errs = append(errs, field.Invalid(vp.Child("name"), v.Name, msg))
			}
			if names[v.Name] {
				errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
			}
			names[v.Name] = true
		}
		errs = append(errs, validateAbsPath(v.HostPath, vp.Child("hostPath"))...)
		errs = append(errs, validateAbsPath(v.MountPath, vp.Child("mountPath"))...)
		switch v.PathType {
		case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
			corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev:
		default:
			errs = append(errs, field.NotSupported(vp.Child("pathType"), v.PathType, []corev1.HostPathType{
				corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
				corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev}))
		}
	}
	return errs
}

func validateExtraEnvs(envs []EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range envs {
		np := p.Index(i).Child("name")
		if e.Name == "" {
			errs = append(errs, field.Required(np, ""))
			continue
		}
		for _, msg := range validation.IsEnvVarName(e.Name) {
			errs = append(errs, field.Invalid(np, e.Name, msg))
		}
	}
	return errs
}

// validateCertSANs accepts IP addresses, DNS names and wildcard names. Unlike kubeadm, which drops
// a bad SAN with a warning, it is an error: a silently missing SAN surfaces much later as a TLS
// failure on some client.
func validateCertSANs(sans []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range sans {
		if net.ParseIP(s) != nil || len(validation.IsDNS1123Subdomain(s)) == 0 || len(validation.IsWildcardDNS1123Subdomain(s)) == 0 {
			continue
		}
		errs = append(errs, field.Invalid(p.Index(i), s, "must be an IP address, a DNS name or a wildcard DNS name such as *.example.com"))
	}
	return errs
}

func validateAbsPath(s string, p *field.Path) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(p, "an absolute path")}
	}
	if !path.IsAbs(s) {
		return field.ErrorList{field.Invalid(p, s, "must be an absolute path")}
	}
	return nil
}

func validateImageRepository(r string, p *field.Path) field.ErrorList {
	if r == "" {
		return field.ErrorList{field.Required(p, "for example "+DefaultImageRepository)}
	}
	if !reference.ReferenceRegexp.MatchString(r + "/name:tag") {
		return field.ErrorList{field.Invalid(p, r, "must be an image registry with an optional path, such as registry.k8s.io or myregistry:5000/k8s")}
	}
	return nil
}

func validateKubestrap(k *KubestrapConfiguration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if modes := append([]string{ModeAuto}, Modes...); !slices.Contains(modes, k.Mode) {
		errs = append(errs, field.NotSupported(p.Child("mode"), k.Mode, modes))
	}
	errs = append(errs, validatePort(k.Etcd.ClientPort, p.Child("etcd", "clientPort"))...)
	errs = append(errs, validatePort(k.Etcd.PeerPort, p.Child("etcd", "peerPort"))...)
	errs = append(errs, validatePort(k.Etcd.MetricsPort, p.Child("etcd", "metricsPort"))...)
	errs = append(errs, validatePort(k.ControllerManager.SecurePort, p.Child("controllerManager", "securePort"))...)
	errs = append(errs, validatePort(k.Scheduler.SecurePort, p.Child("scheduler", "securePort"))...)
	errs = append(errs, validatePort(k.CSRApprover.HealthPort, p.Child("csrApprover", "healthPort"))...)
	sp := p.Child("supervisor")
	errs = append(errs, nonNegative(k.Supervisor.MaxRestartBackoff, sp.Child("maxRestartBackoff"))...)
	errs = append(errs, nonNegative(k.Supervisor.StopTimeout, sp.Child("stopTimeout"))...)
	if k.Supervisor.LogMaxSizeMB < 1 {
		errs = append(errs, field.Invalid(sp.Child("logMaxSizeMB"), k.Supervisor.LogMaxSizeMB, "must be at least 1"))
	}
	if k.Supervisor.LogMaxFiles < 1 {
		errs = append(errs, field.Invalid(sp.Child("logMaxFiles"), k.Supervisor.LogMaxFiles, "must be at least 1"))
	}
	return errs
}

// validatePortConflicts rejects two control-plane listeners on one port: every component binds on
// this host, so the second one would fail to start long after init accepted the configuration.
func validatePortConflicts(c *Config) field.ErrorList {
	type use struct {
		path *field.Path
		port int32
	}
	kp := field.NewPath(KindKubestrap)
	uses := []use{{field.NewPath("localAPIEndpoint", "bindPort"), c.BindPort()}}
	if c.LocalEtcd() {
		uses = append(uses,
			use{kp.Child("etcd", "clientPort"), c.EtcdClientPort()},
			use{kp.Child("etcd", "peerPort"), c.EtcdPeerPort()},
			use{kp.Child("etcd", "metricsPort"), c.EtcdMetricsPort()})
	}
	uses = append(uses,
		use{kp.Child("controllerManager", "securePort"), c.ControllerManagerPort()},
		use{kp.Child("scheduler", "securePort"), c.SchedulerPort()})
	if !c.Kubestrap.CSRApprover.Disabled {
		uses = append(uses, use{kp.Child("csrApprover", "healthPort"), c.CSRApproverHealthPort()})
	}
	var errs field.ErrorList
	first := map[int32]*field.Path{}
	for _, u := range uses {
		if prev, dup := first[u.port]; dup {
			errs = append(errs, field.Invalid(u.path, u.port, fmt.Sprintf("port already used by %s", prev)))
			continue
		}
		first[u.port] = u.path
	}
	return errs
}
