package config

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubestrap/kubestrap/internal/paths"
)

// Static defaults: kubeadm v1.37.2's v1beta4 defaulting (reference §8), with two deliberate
// differences. encryptionAlgorithm defaults to ECDSA-P256, whose keys take milliseconds to
// generate where RSA-2048 takes a noticeable fraction of a second each, over a dozen certificates
// per init; kubernetesVersion defaults to the bundled version instead of "stable-1", which kubeadm
// resolves over the internet.
const (
	// BundledKubernetesVersion is the version of the control plane compiled into kubestrap.
	BundledKubernetesVersion = "v1.37.2"
	// MinimumKubernetesVersion is the oldest control plane kubestrap deploys (kubeadm's rule:
	// one minor release older than itself).
	MinimumKubernetesVersion = "v1.36.0"

	DefaultServiceSubnet       = "10.96.0.0/12"
	DefaultDNSDomain           = "cluster.local"
	DefaultImageRepository     = "registry.k8s.io"
	DefaultClusterName         = "kubernetes"
	DefaultEncryptionAlgorithm = AlgorithmECDSAP256
	DefaultCertValidity        = 365 * 24 * time.Hour
	DefaultCACertValidity      = 10 * 365 * 24 * time.Hour
	DefaultCACertPath          = paths.DefaultCertificatesDir + "/ca.crt"

	DefaultTokenTTL   = 24 * time.Hour
	DefaultTokenGroup = "system:bootstrappers:kubeadm:default-node-token"

	DefaultControlPlaneHealthCheckTimeout = 4 * time.Minute
	DefaultKubeletHealthCheckTimeout      = 4 * time.Minute
	DefaultKubernetesAPICallTimeout       = time.Minute
	DefaultEtcdAPICallTimeout             = 2 * time.Minute
	DefaultTLSBootstrapTimeout            = 5 * time.Minute
	DefaultDiscoveryTimeout               = 5 * time.Minute
	DefaultUpgradeManifestsTimeout        = 5 * time.Minute

	DefaultMode              = ModeAuto
	DefaultMaxRestartBackoff = 30 * time.Second
	DefaultStopTimeout       = 10 * time.Second
	DefaultLogMaxSizeMB      = 10
	DefaultLogMaxFiles       = 3

	// ControlPlaneTaintKey is the taint kubeadm puts on control-plane nodes when nodeRegistration
	// says nothing about taints.
	ControlPlaneTaintKey = "node-role.kubernetes.io/control-plane"
)

// Placeholders `kubeadm config print init-defaults` prints instead of detecting the host, so the
// output is the same on every machine.
const (
	PlaceholderToken             = "abcdef.0123456789abcdef"
	PlaceholderAdvertiseAddress  = "1.2.3.4"
	PlaceholderNodeName          = "node"
	PlaceholderCRISocket         = "unix:///var/run/containerd/containerd.sock"
	PlaceholderAPIServerEndpoint = "kube-apiserver:6443"
)

// DefaultTokenUsages are the usages of a bootstrap token that does not list any.
var DefaultTokenUsages = []string{"signing", "authentication"}

// SetDefaults fills in the static defaults of every document of c: the values that do not depend
// on the host. A bootstrap token entry without a token string is left that way; EnsureBootstrapToken
// generates it when init actually runs.
func SetDefaults(c *Config) {
	setInitDefaults(&c.Init)
	setClusterDefaults(&c.Cluster)
	setKubestrapDefaults(&c.Kubestrap)
}

// DefaultInit is the configuration `config print init-defaults` prints: the static defaults plus
// kubeadm's placeholders for what would otherwise be detected or generated, so the output is
// deterministic and passes validation as it is.
func DefaultInit() *Config {
	c := &Config{}
	c.Init.BootstrapTokens = []BootstrapToken{{Token: PlaceholderToken}}
	c.Init.LocalAPIEndpoint.AdvertiseAddress = PlaceholderAdvertiseAddress
	c.Init.NodeRegistration.Name = PlaceholderNodeName
	c.Init.NodeRegistration.CRISocket = PlaceholderCRISocket
	SetDefaults(c)
	return c
}

func setInitDefaults(in *InitConfiguration) {
	if len(in.BootstrapTokens) == 0 {
		in.BootstrapTokens = []BootstrapToken{{}}
	}
	for i := range in.BootstrapTokens {
		setTokenDefaults(&in.BootstrapTokens[i])
	}
	if in.LocalAPIEndpoint.BindPort == 0 {
		in.LocalAPIEndpoint.BindPort = DefaultAPIServerPort
	}
	setNodeRegistrationDefaults(&in.NodeRegistration)
	in.Timeouts = defaultTimeouts(in.Timeouts)
}

func setTokenDefaults(t *BootstrapToken) {
	if t.TTL == nil && t.Expires == nil {
		t.TTL = &metav1.Duration{Duration: DefaultTokenTTL}
	}
	if len(t.Usages) == 0 {
		t.Usages = append([]string(nil), DefaultTokenUsages...)
	}
	if len(t.Groups) == 0 {
		t.Groups = []string{DefaultTokenGroup}
	}
}

func setNodeRegistrationDefaults(n *NodeRegistration) {
	if n.ImagePullPolicy == "" {
		n.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if n.ImagePullSerial == nil {
		t := true
		n.ImagePullSerial = &t
	}
}

// defaultTimeouts fills every unset timeout; kubeadm always prints all seven.
func defaultTimeouts(t *Timeouts) *Timeouts {
	if t == nil {
		t = &Timeouts{}
	}
	set := func(d **metav1.Duration, v time.Duration) {
		if *d == nil {
			*d = &metav1.Duration{Duration: v}
		}
	}
	set(&t.ControlPlaneComponentHealthCheck, DefaultControlPlaneHealthCheckTimeout)
	set(&t.KubeletHealthCheck, DefaultKubeletHealthCheckTimeout)
	set(&t.KubernetesAPICall, DefaultKubernetesAPICallTimeout)
	set(&t.EtcdAPICall, DefaultEtcdAPICallTimeout)
	set(&t.TLSBootstrap, DefaultTLSBootstrapTimeout)
	set(&t.Discovery, DefaultDiscoveryTimeout)
	set(&t.UpgradeManifests, DefaultUpgradeManifestsTimeout)
	return t
}

func setClusterDefaults(c *ClusterConfiguration) {
	if c.KubernetesVersion == "" {
		c.KubernetesVersion = BundledKubernetesVersion
	}
	// kubeadm accepts "1.37.2" for "v1.37.2"; the components and image tags need the "v".
	if v := c.KubernetesVersion; v[0] >= '0' && v[0] <= '9' {
		c.KubernetesVersion = "v" + v
	}
	if c.Networking.ServiceSubnet == "" {
		c.Networking.ServiceSubnet = DefaultServiceSubnet
	}
	if c.Networking.DNSDomain == "" {
		c.Networking.DNSDomain = DefaultDNSDomain
	}
	if c.CertificatesDir == "" {
		c.CertificatesDir = paths.DefaultCertificatesDir
	}
	if c.ImageRepository == "" {
		c.ImageRepository = DefaultImageRepository
	}
	if c.ClusterName == "" {
		c.ClusterName = DefaultClusterName
	}
	if c.EncryptionAlgorithm == "" {
		c.EncryptionAlgorithm = DefaultEncryptionAlgorithm
	}
	if c.CertificateValidityPeriod == nil {
		c.CertificateValidityPeriod = &metav1.Duration{Duration: DefaultCertValidity}
	}
	if c.CACertificateValidityPeriod == nil {
		c.CACertificateValidityPeriod = &metav1.Duration{Duration: DefaultCACertValidity}
	}
	if c.Etcd.Local == nil && c.Etcd.External == nil {
		c.Etcd.Local = &LocalEtcd{}
	}
	if c.Etcd.Local != nil && c.Etcd.Local.DataDir == "" {
		c.Etcd.Local.DataDir = paths.DefaultEtcdDataDir
	}
	// kubeadm sends health checks and metrics to the client endpoints unless told otherwise.
	if e := c.Etcd.External; e != nil && len(e.HTTPEndpoints) == 0 && len(e.Endpoints) > 0 {
		e.HTTPEndpoints = append([]string(nil), e.Endpoints...)
	}
}

func setKubestrapDefaults(k *KubestrapConfiguration) {
	if k.Mode == "" {
		k.Mode = DefaultMode
	}
	setPort := func(p *int32, v int32) {
		if *p == 0 {
			*p = v
		}
	}
	setPort(&k.Etcd.ClientPort, DefaultEtcdClientPort)
	setPort(&k.Etcd.PeerPort, DefaultEtcdPeerPort)
	setPort(&k.Etcd.MetricsPort, DefaultEtcdMetricsPort)
	setPort(&k.ControllerManager.SecurePort, DefaultKCMPort)
	setPort(&k.Scheduler.SecurePort, DefaultSchedulerPort)
	setPort(&k.CSRApprover.HealthPort, DefaultCSRApproverHealthPort)
	if k.Supervisor.MaxRestartBackoff == nil {
		k.Supervisor.MaxRestartBackoff = &metav1.Duration{Duration: DefaultMaxRestartBackoff}
	}
	if k.Supervisor.StopTimeout == nil {
		k.Supervisor.StopTimeout = &metav1.Duration{Duration: DefaultStopTimeout}
	}
	if k.Supervisor.LogMaxSizeMB == 0 {
		k.Supervisor.LogMaxSizeMB = DefaultLogMaxSizeMB
	}
	if k.Supervisor.LogMaxFiles == 0 {
		k.Supervisor.LogMaxFiles = DefaultLogMaxFiles
	}
}
