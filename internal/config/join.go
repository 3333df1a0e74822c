package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// NoControlPlaneEndpoint is why a control-plane join is refused for a cluster without
// controlPlaneEndpoint (kubeadm refuses it too): every node's kubeconfigs, the kubelets and the join
// commands point at one address, and a cluster set up without it points them at its first node.
const NoControlPlaneEndpoint = `the cluster has no controlPlaneEndpoint: a control-plane node can only join a cluster ` +
	`whose ClusterConfiguration sets controlPlaneEndpoint (a load balancer or DNS name in front of every apiserver), ` +
	`since every node's kubeconfigs point there. Set it when running "kubestrap init" ` +
	`(--control-plane-endpoint HOST:PORT); this cluster can only get worker nodes`

// NoCertificateKey is why a control-plane join without a certificate key is refused.
const NoCertificateKey = `a control-plane join needs the cluster's shared certificates: pass --certificate-key ` +
	`(controlPlane.certificateKey) with the key "kubestrap init --upload-certs" or ` +
	`"kubestrap init phase upload-certs --upload-certs" printed on a control-plane node`

// JoinConfig is everything kubestrap join reads: the JoinConfiguration and the kubestrap settings.
type JoinConfig struct {
	Join      JoinConfiguration
	Kubestrap KubestrapConfiguration
}

// JoinOverrides are the values join's command-line flags set; zero means "flag not given". They
// win over the file, so a join can be described by flags alone, as with kubeadm.
type JoinOverrides struct {
	// APIServerEndpoint is the positional argument of join (host:port of the control plane).
	APIServerEndpoint        string
	Token                    string
	DiscoveryToken           string
	CACertHashes             []string
	UnsafeSkipCAVerification bool
	DiscoveryFile            string
	TLSBootstrapToken        string
	NodeName                 string
	CACertPath               string
	Mode                     string
	// ControlPlane (--control-plane) makes this a control-plane join; CertificateKey,
	// AdvertiseAddress and BindPort are its --certificate-key, --apiserver-advertise-address and
	// --apiserver-bind-port, and also make one.
	ControlPlane     bool
	CertificateKey   string
	AdvertiseAddress string
	BindPort         int32
}

// Apply writes the set overrides into j. --token stands for both the discovery and the TLS
// bootstrap token, as in kubeadm; the specific flags win over it. Setting any token-discovery value
// selects token discovery; setting DiscoveryFile selects file discovery.
func (o JoinOverrides) Apply(j *JoinConfig) {
	d := &j.Join.Discovery
	discoveryToken := o.DiscoveryToken
	// With file discovery --token is only the TLS bootstrap token.
	if o.DiscoveryFile == "" {
		discoveryToken = firstNonEmpty(o.DiscoveryToken, o.Token)
	}
	if o.APIServerEndpoint != "" || discoveryToken != "" || len(o.CACertHashes) > 0 || o.UnsafeSkipCAVerification {
		if d.BootstrapToken == nil {
			d.BootstrapToken = &BootstrapTokenDiscovery{}
		}
		bt := d.BootstrapToken
		if o.APIServerEndpoint != "" {
			bt.APIServerEndpoint = o.APIServerEndpoint
		}
		if discoveryToken != "" {
			bt.Token = discoveryToken
		}
		if len(o.CACertHashes) > 0 {
			bt.CACertHashes = append([]string(nil), o.CACertHashes...)
		}
		if o.UnsafeSkipCAVerification {
			bt.UnsafeSkipCAVerification = true
		}
	}
	if o.DiscoveryFile != "" {
		d.File = &FileDiscovery{KubeConfigPath: o.DiscoveryFile}
	}
	if t := firstNonEmpty(o.TLSBootstrapToken, o.Token); t != "" {
		d.TLSBootstrapToken = t
	}
	if o.NodeName != "" {
		j.Join.NodeRegistration.Name = o.NodeName
	}
	if o.CACertPath != "" {
		j.Join.CACertPath = o.CACertPath
	}
	if o.Mode != "" {
		j.Kubestrap.Mode = o.Mode
	}
	if o.ControlPlane || o.CertificateKey != "" || o.AdvertiseAddress != "" || o.BindPort != 0 {
		if j.Join.ControlPlane == nil {
			j.Join.ControlPlane = &JoinControlPlane{}
		}
		cp := j.Join.ControlPlane
		if o.CertificateKey != "" {
			cp.CertificateKey = o.CertificateKey
		}
		if o.AdvertiseAddress != "" {
			cp.LocalAPIEndpoint.AdvertiseAddress = o.AdvertiseAddress
		}
		if o.BindPort != 0 {
			cp.LocalAPIEndpoint.BindPort = o.BindPort
		}
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// LoadJoin builds join's configuration from a file (none when path is ""): strict decoding, static
// and dynamic defaults, validation. The error lists every problem.
func LoadJoin(path string, host Host) (*JoinConfig, error) {
	return LoadJoinWith(path, JoinOverrides{}, host)
}

// LoadJoinWith is LoadJoin with join's command-line flags applied over the file.
func LoadJoinWith(path string, o JoinOverrides, host Host) (*JoinConfig, error) {
	if path == "" {
		return loadJoin("", nil, false, o, host)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w", err)
	}
	return loadJoin(path, data, true, o, host)
}

func loadJoin(source string, data []byte, haveFile bool, o JoinOverrides, host Host) (*JoinConfig, error) {
	return loadJoinChecked(source, data, haveFile, o, host, nil)
}

// loadJoinChecked is loadJoin that also checks skipPhases against phases (see PhaseNames).
func loadJoinChecked(source string, data []byte, haveFile bool, o JoinOverrides, host Host, phases []string) (*JoinConfig, error) {
	j := &JoinConfig{}
	var problems []error
	if haveFile {
		docs, err := ParseDocuments(data)
		problems = problemsOf(err)
		if !docs.Has(KindJoin) {
			if len(problems) == 0 {
				problems = []error{fmt.Errorf("no %s document found", KindJoin)}
			}
			return nil, newError(source, problems)
		}
		hard := false
		for _, d := range docs {
			var target any
			switch {
			case d.APIVersion == KubeadmAPIVersion && d.Kind == KindJoin:
				target = &j.Join
			case d.APIVersion == KubestrapAPIVersion && d.Kind == KindKubestrap:
				target = &j.Kubestrap
			default:
				// Init, cluster and reset documents belong to other commands; ValidateFile
				// checks them when asked.
				continue
			}
			strict, err := decodeStrict(d, target)
			if err != nil {
				problems = append(problems, err)
				hard = true
				continue
			}
			problems = append(problems, strict...)
		}
		if hard {
			return nil, newError(source, problems)
		}
	}
	o.Apply(j)
	SetJoinDefaults(j)
	dyn := ApplyJoinDynamicDefaults(j, host)
	problems = append(problems, mergeFieldErrors(dyn, validateJoinConfig(j))...)
	problems = append(problems, toErrors(validateSkipPhases(j.Join.SkipPhases, phases))...)
	if len(problems) > 0 {
		return nil, newError(source, problems)
	}
	return j, nil
}

// SetJoinDefaults fills in the static defaults of a join configuration (kubeadm's v1beta4 ones).
func SetJoinDefaults(j *JoinConfig) {
	jc := &j.Join
	if jc.CACertPath == "" {
		jc.CACertPath = DefaultCACertPath
	}
	if jc.ControlPlane != nil && jc.ControlPlane.LocalAPIEndpoint.BindPort == 0 {
		jc.ControlPlane.LocalAPIEndpoint.BindPort = DefaultAPIServerPort
	}
	// One token usually serves both steps: discovering the cluster and the kubelet's TLS bootstrap.
	if jc.Discovery.TLSBootstrapToken == "" && jc.Discovery.BootstrapToken != nil {
		jc.Discovery.TLSBootstrapToken = jc.Discovery.BootstrapToken.Token
	}
	if f := jc.Discovery.File; f != nil {
		if u, err := url.Parse(f.KubeConfigPath); err == nil && u.Scheme == "file" {
			f.KubeConfigPath = u.Path
		}
	}
	setNodeRegistrationDefaults(&jc.NodeRegistration)
	jc.Timeouts = defaultTimeouts(jc.Timeouts)
	setKubestrapDefaults(&j.Kubestrap)
}

// ApplyJoinDynamicDefaults fills in the node name from the hostname and, for a control-plane
// join, the advertise address and the control-plane taint. Undetectable values come back as
// field errors.
func ApplyJoinDynamicDefaults(j *JoinConfig, host Host) field.ErrorList {
	var errs field.ErrorList
	jc := &j.Join
	errs = append(errs, nodeNameDefault(&jc.NodeRegistration, host, field.NewPath("nodeRegistration", "name"))...)
	jc.NodeRegistration.CRISocket = socketURL(jc.NodeRegistration.CRISocket)
	if cp := jc.ControlPlane; cp != nil {
		if cp.LocalAPIEndpoint.AdvertiseAddress == "" {
			ip, err := host.DefaultIPv4()
			if err != nil {
				errs = append(errs, field.Required(field.NewPath("controlPlane", "localAPIEndpoint", "advertiseAddress"),
					fmt.Sprintf("could not detect this host's address (%v): set controlPlane.localAPIEndpoint.advertiseAddress", err)))
			} else {
				cp.LocalAPIEndpoint.AdvertiseAddress = ip.String()
			}
		}
		if jc.NodeRegistration.Taints == nil {
			jc.NodeRegistration.Taints = []Taint{{Key: ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule}}
		}
	}
	return errs
}

// DefaultJoin is what `config print join-defaults` prints: kubeadm's placeholders (token
// discovery against kube-apiserver:6443 without CA pinning, which validation only accepts because
// unsafeSkipCAVerification is set) plus the static defaults.
func DefaultJoin() *JoinConfig {
	j := &JoinConfig{}
	j.Join.Discovery.BootstrapToken = &BootstrapTokenDiscovery{
		APIServerEndpoint:        PlaceholderAPIServerEndpoint,
		Token:                    PlaceholderToken,
		UnsafeSkipCAVerification: true,
	}
	j.Join.NodeRegistration.Name = PlaceholderNodeName
	j.Join.NodeRegistration.CRISocket = PlaceholderCRISocket
	SetJoinDefaults(j)
	return j
}

// ValidateJoin checks a defaulted join configuration and returns an *Error listing every problem.
func ValidateJoin(j *JoinConfig) error {
	return newError("", toErrors(validateJoinConfig(j)))
}

func validateJoinConfig(j *JoinConfig) field.ErrorList {
	jc := &j.Join
	var errs field.ErrorList
	errs = append(errs, validateDiscovery(&jc.Discovery, field.NewPath("discovery"))...)
	errs = append(errs, validateNodeRegistration(&jc.NodeRegistration, field.NewPath("nodeRegistration"))...)
	if jc.CACertPath == "" || !path.IsAbs(jc.CACertPath) || !strings.HasSuffix(jc.CACertPath, ".crt") {
		errs = append(errs, field.Invalid(field.NewPath("caCertPath"), jc.CACertPath, `must be an absolute path to a ".crt" file`))
	}
	if cp := jc.ControlPlane; cp != nil {
		p := field.NewPath("controlPlane")
		if cp.CertificateKey == "" {
			errs = append(errs, field.Required(p.Child("certificateKey"), NoCertificateKey))
		}
		errs = append(errs, validateAPIEndpoint(&cp.LocalAPIEndpoint, p.Child("localAPIEndpoint"))...)
		errs = append(errs, validateCertificateKey(cp.CertificateKey, p.Child("certificateKey"))...)
	}
	errs = append(errs, validatePatches(jc.Patches, field.NewPath("patches"))...)
	errs = append(errs, validateTimeouts(jc.Timeouts, field.NewPath("timeouts"))...)
	errs = append(errs, validateKubestrap(&j.Kubestrap, field.NewPath(KindKubestrap))...)
	return errs
}

func validateDiscovery(d *Discovery, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case d.BootstrapToken == nil && d.File == nil:
		errs = append(errs, field.Required(p, "discovery.bootstrapToken (join HOST:PORT --token ... --discovery-token-ca-cert-hash ...) or discovery.file"))
	case d.BootstrapToken != nil && d.File != nil:
		errs = append(errs, field.Forbidden(p, "discovery.bootstrapToken and discovery.file are mutually exclusive"))
	}
	if bt := d.BootstrapToken; bt != nil {
		bp := p.Child("bootstrapToken")
		errs = append(errs, validateToken(bt.Token, bp.Child("token"))...)
		if bt.APIServerEndpoint == "" {
			errs = append(errs, field.Required(bp.Child("apiServerEndpoint"), "host:port of the control plane"))
		} else {
			errs = append(errs, validateHostPort(bt.APIServerEndpoint, true, bp.Child("apiServerEndpoint"))...)
		}
		for i, h := range bt.CACertHashes {
			errs = append(errs, validateCACertHash(h, bp.Child("caCertHashes").Index(i))...)
		}
		// Without a pinned CA hash anyone who can answer on apiServerEndpoint can pose as the
		// cluster; kubeadm makes skipping the check an explicit choice.
		if len(bt.CACertHashes) == 0 && !bt.UnsafeSkipCAVerification {
			errs = append(errs, field.Required(bp.Child("caCertHashes"),
				"token discovery without a CA certificate hash trusts whoever answers: pass --discovery-token-ca-cert-hash sha256:<hash> (printed by init), or set unsafeSkipCAVerification to accept the risk"))
		}
		errs = append(errs, validateToken(d.TLSBootstrapToken, p.Child("tlsBootstrapToken"))...)
	}
	if f := d.File; f != nil {
		fp := p.Child("file", "kubeConfigPath")
		if f.KubeConfigPath == "" {
			errs = append(errs, field.Required(fp, "a kubeconfig file or an https URL"))
		} else if u, err := url.Parse(f.KubeConfigPath); err != nil || (u.Scheme != "" && u.Scheme != "https") {
			errs = append(errs, field.Invalid(fp, f.KubeConfigPath, "must be a file path or an https URL"))
		}
		if d.TLSBootstrapToken != "" {
			errs = append(errs, validateToken(d.TLSBootstrapToken, p.Child("tlsBootstrapToken"))...)
		}
	}
	return errs
}

// validateCACertHash checks kubeadm's pin format: "sha256:" and the hex SHA-256 of the CA's
// Subject Public Key Info.
func validateCACertHash(h string, p *field.Path) field.ErrorList {
	algo, value, ok := strings.Cut(h, ":")
	b, err := hex.DecodeString(value)
	if !ok || algo != "sha256" || err != nil || len(b) != 32 {
		return field.ErrorList{field.Invalid(p, h, `must be "sha256:" followed by 64 hex digits`)}
	}
	return nil
}

// ControlPlaneConfig is the configuration a control-plane join sets its node up with, as init
// would have: the cluster's ClusterConfiguration (clusterDoc, from the kube-system/kubeadm-config
// ConfigMap), and this node's part from the join's configuration — node registration,
// controlPlane.localAPIEndpoint, timeouts and the KubestrapConfiguration (run mode, ports). It is
// loaded, defaulted and validated exactly as an init configuration file, so a joined node's
// certificates, kubeconfigs and component flags are the ones init makes for the same values. A
// cluster without controlPlaneEndpoint is refused (NoControlPlaneEndpoint).
func ControlPlaneConfig(j *JoinConfig, clusterDoc []byte, host Host) (*Config, error) {
	cp := j.Join.ControlPlane
	if cp == nil {
		return nil, fmt.Errorf("not a control-plane join: the JoinConfiguration has no controlPlane section")
	}
	init := InitConfiguration{
		NodeRegistration: j.Join.NodeRegistration,
		LocalAPIEndpoint: cp.LocalAPIEndpoint,
		Timeouts:         j.Join.Timeouts,
	}
	init.APIVersion, init.Kind = KubeadmAPIVersion, KindInit
	ks := j.Kubestrap
	ks.APIVersion, ks.Kind = KubestrapAPIVersion, KindKubestrap
	node, err := marshalDocuments(&init, &ks)
	if err != nil {
		return nil, err
	}
	data := append(append(bytes.TrimRight(slices.Clone(clusterDoc), "\n"), "\n---\n"...), node...)
	cfg, err := LoadInitData("the cluster's ClusterConfiguration with this join's configuration", data, Overrides{}, host)
	if err != nil {
		return nil, err
	}
	if cfg.Cluster.ControlPlaneEndpoint == "" {
		return nil, errors.New(NoControlPlaneEndpoint)
	}
	return cfg, nil
}
