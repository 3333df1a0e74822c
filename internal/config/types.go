package config

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// API groups and kinds kubestrap reads. kubeadm.k8s.io/v1beta4 is kubeadm's own format, so an
// operator can bring an existing kubeadm config file; kubestrap.io/v1alpha1 carries only what kubeadm
// has no field for.
const (
	KubeadmAPIVersion   = "kubeadm.k8s.io/v1beta4"
	KubestrapAPIVersion = "kubestrap.io/v1alpha1"

	KindInit      = "InitConfiguration"
	KindCluster   = "ClusterConfiguration"
	KindJoin      = "JoinConfiguration"
	KindReset     = "ResetConfiguration"
	KindKubestrap = "KubestrapConfiguration"
)

// Run modes of the control plane.
const (
	ModeAuto      = "auto"
	ModeLocal     = "local"
	ModeStaticPod = "static-pod"
	ModeSystemd   = "systemd"
)

// Modes are the run modes besides auto, in the order they are listed to users. This is the one
// list of them: internal/runmode, which implements each one, serves it as runmode.Names and its
// test fails when an implementation is missing from it or it names one that does not exist.
var Modes = []string{ModeLocal, ModeStaticPod, ModeSystemd}

// Key algorithms accepted by encryptionAlgorithm (kubeadm's names).
const (
	AlgorithmRSA2048   = "RSA-2048"
	AlgorithmRSA3072   = "RSA-3072"
	AlgorithmRSA4096   = "RSA-4096"
	AlgorithmECDSAP256 = "ECDSA-P256"
	AlgorithmECDSAP384 = "ECDSA-P384"
)

// Arg is one command-line argument of a component (v1beta4 extraArgs entry).
type Arg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// EnvVar is an extra environment variable of a component (v1beta4 inlines corev1.EnvVar).
type EnvVar struct {
	corev1.EnvVar `json:",inline"`
}

// HostPathMount is an extra hostPath volume of a control-plane component.
type HostPathMount struct {
	Name      string              `json:"name"`
	HostPath  string              `json:"hostPath"`
	MountPath string              `json:"mountPath"`
	ReadOnly  bool                `json:"readOnly,omitempty"`
	PathType  corev1.HostPathType `json:"pathType,omitempty"`
}

// ControlPlaneComponent holds the per-component settings of the apiserver, KCM and scheduler.
type ControlPlaneComponent struct {
	ExtraArgs    []Arg           `json:"extraArgs,omitempty"`
	ExtraVolumes []HostPathMount `json:"extraVolumes,omitempty"`
	ExtraEnvs    []EnvVar        `json:"extraEnvs,omitempty"`
}

// APIServer adds certSANs to the common component settings.
type APIServer struct {
	ControlPlaneComponent `json:",inline"`
	CertSANs              []string `json:"certSANs,omitempty"`
}

// ImageMeta selects a component image.
type ImageMeta struct {
	ImageRepository string `json:"imageRepository,omitempty"`
	ImageTag        string `json:"imageTag,omitempty"`
}

// LocalEtcd is an etcd member run on this node.
type LocalEtcd struct {
	ImageMeta      `json:",inline"`
	DataDir        string   `json:"dataDir,omitempty"`
	ExtraArgs      []Arg    `json:"extraArgs,omitempty"`
	ExtraEnvs      []EnvVar `json:"extraEnvs,omitempty"`
	ServerCertSANs []string `json:"serverCertSANs,omitempty"`
	PeerCertSANs   []string `json:"peerCertSANs,omitempty"`
}

// ExternalEtcd is an etcd cluster run elsewhere.
type ExternalEtcd struct {
	Endpoints []string `json:"endpoints"`
	// HTTPEndpoints serve etcd's HTTP traffic (metrics, health checks); kubeadm v1.37 added the
	// field and defaults it to Endpoints, so a v1.37 kubeadm file may carry it.
	HTTPEndpoints []string `json:"httpEndpoints,omitempty"`
	CAFile        string   `json:"caFile,omitempty"`
	CertFile      string   `json:"certFile,omitempty"`
	KeyFile       string   `json:"keyFile,omitempty"`
}

// Etcd is either local or external.
type Etcd struct {
	Local    *LocalEtcd    `json:"local,omitempty"`
	External *ExternalEtcd `json:"external,omitempty"`
}

// Networking holds the cluster's address ranges.
type Networking struct {
	ServiceSubnet string `json:"serviceSubnet,omitempty"`
	PodSubnet     string `json:"podSubnet,omitempty"`
	DNSDomain     string `json:"dnsDomain,omitempty"`
}

// DNS and Proxy are the CoreDNS and kube-proxy addon settings (package addons).
type DNS struct {
	ImageMeta `json:",inline"`
	Disabled  bool `json:"disabled,omitempty"`
}

type Proxy struct {
	Disabled bool `json:"disabled,omitempty"`
}

// ClusterConfiguration is kubeadm.k8s.io/v1beta4 ClusterConfiguration.
type ClusterConfiguration struct {
	metav1.TypeMeta `json:",inline"`

	Etcd                        Etcd                  `json:"etcd,omitempty"`
	Networking                  Networking            `json:"networking,omitempty"`
	KubernetesVersion           string                `json:"kubernetesVersion,omitempty"`
	ControlPlaneEndpoint        string                `json:"controlPlaneEndpoint,omitempty"`
	APIServer                   APIServer             `json:"apiServer,omitempty"`
	ControllerManager           ControlPlaneComponent `json:"controllerManager,omitempty"`
	Scheduler                   ControlPlaneComponent `json:"scheduler,omitempty"`
	DNS                         DNS                   `json:"dns,omitempty"`
	Proxy                       Proxy                 `json:"proxy,omitempty"`
	CertificatesDir             string                `json:"certificatesDir,omitempty"`
	ImageRepository             string                `json:"imageRepository,omitempty"`
	FeatureGates                map[string]bool       `json:"featureGates,omitempty"`
	ClusterName                 string                `json:"clusterName,omitempty"`
	EncryptionAlgorithm         string                `json:"encryptionAlgorithm,omitempty"`
	CertificateValidityPeriod   *metav1.Duration      `json:"certificateValidityPeriod,omitempty"`
	CACertificateValidityPeriod *metav1.Duration      `json:"caCertificateValidityPeriod,omitempty"`
}

// BootstrapToken is a token for joining nodes, in kubeadm's format "[a-z0-9]{6}.[a-z0-9]{16}".
type BootstrapToken struct {
	Token       string           `json:"token"`
	Description string           `json:"description,omitempty"`
	TTL         *metav1.Duration `json:"ttl,omitempty"`
	Expires     *metav1.Time     `json:"expires,omitempty"`
	Usages      []string         `json:"usages,omitempty"`
	Groups      []string         `json:"groups,omitempty"`
}

// Taint is a node taint (the corev1 type, as kubeadm uses).
type Taint = corev1.Taint

// NodeRegistration describes how this node registers with the cluster.
type NodeRegistration struct {
	Name                  string            `json:"name,omitempty"`
	CRISocket             string            `json:"criSocket,omitempty"`
	Taints                []Taint           `json:"taints"`
	KubeletExtraArgs      []Arg             `json:"kubeletExtraArgs,omitempty"`
	IgnorePreflightErrors []string          `json:"ignorePreflightErrors,omitempty"`
	ImagePullPolicy       corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	ImagePullSerial       *bool             `json:"imagePullSerial,omitempty"`
}

// APIEndpoint is the address and port the local apiserver advertises and binds.
type APIEndpoint struct {
	AdvertiseAddress string `json:"advertiseAddress,omitempty"`
	BindPort         int32  `json:"bindPort,omitempty"`
}

// Patches points at a directory of patches (accepted for compatibility).
type Patches struct {
	Directory string `json:"directory,omitempty"`
}

// Timeouts are kubeadm's v1beta4 timeouts.
type Timeouts struct {
	ControlPlaneComponentHealthCheck *metav1.Duration `json:"controlPlaneComponentHealthCheck,omitempty"`
	KubeletHealthCheck               *metav1.Duration `json:"kubeletHealthCheck,omitempty"`
	KubernetesAPICall                *metav1.Duration `json:"kubernetesAPICall,omitempty"`
	EtcdAPICall                      *metav1.Duration `json:"etcdAPICall,omitempty"`
	TLSBootstrap                     *metav1.Duration `json:"tlsBootstrap,omitempty"`
	Discovery                        *metav1.Duration `json:"discovery,omitempty"`
	UpgradeManifests                 *metav1.Duration `json:"upgradeManifests,omitempty"`
}

// InitConfiguration is kubeadm.k8s.io/v1beta4 InitConfiguration.
type InitConfiguration struct {
	metav1.TypeMeta `json:",inline"`

	BootstrapTokens  []BootstrapToken `json:"bootstrapTokens,omitempty"`
	DryRun           bool             `json:"dryRun,omitempty"`
	NodeRegistration NodeRegistration `json:"nodeRegistration,omitempty"`
	LocalAPIEndpoint APIEndpoint      `json:"localAPIEndpoint,omitempty"`
	CertificateKey   string           `json:"certificateKey,omitempty"`
	SkipPhases       []string         `json:"skipPhases,omitempty"`
	Patches          *Patches         `json:"patches,omitempty"`
	Timeouts         *Timeouts        `json:"timeouts,omitempty"`
}

// BootstrapTokenDiscovery is token-based discovery for join.
type BootstrapTokenDiscovery struct {
	Token                    string   `json:"token"`
	APIServerEndpoint        string   `json:"apiServerEndpoint,omitempty"`
	CACertHashes             []string `json:"caCertHashes,omitempty"`
	UnsafeSkipCAVerification bool     `json:"unsafeSkipCAVerification,omitempty"`
}

// FileDiscovery is kubeconfig-file discovery for join.
type FileDiscovery struct {
	KubeConfigPath string `json:"kubeConfigPath"`
}

// Discovery says how a joining node finds and trusts the cluster.
type Discovery struct {
	BootstrapToken    *BootstrapTokenDiscovery `json:"bootstrapToken,omitempty"`
	File              *FileDiscovery           `json:"file,omitempty"`
	TLSBootstrapToken string                   `json:"tlsBootstrapToken,omitempty"`
}

// JoinControlPlane is set when a node joins as a control plane (not supported yet).
type JoinControlPlane struct {
	LocalAPIEndpoint APIEndpoint `json:"localAPIEndpoint,omitempty"`
	CertificateKey   string      `json:"certificateKey,omitempty"`
}

// JoinConfiguration is kubeadm.k8s.io/v1beta4 JoinConfiguration.
type JoinConfiguration struct {
	metav1.TypeMeta `json:",inline"`

	DryRun           bool              `json:"dryRun,omitempty"`
	NodeRegistration NodeRegistration  `json:"nodeRegistration,omitempty"`
	CACertPath       string            `json:"caCertPath,omitempty"`
	Discovery        Discovery         `json:"discovery"`
	ControlPlane     *JoinControlPlane `json:"controlPlane,omitempty"`
	SkipPhases       []string          `json:"skipPhases,omitempty"`
	Patches          *Patches          `json:"patches,omitempty"`
	Timeouts         *Timeouts         `json:"timeouts,omitempty"`
}

// ResetConfiguration is kubeadm.k8s.io/v1beta4 ResetConfiguration.
type ResetConfiguration struct {
	metav1.TypeMeta `json:",inline"`

	CleanupTmpDir         bool      `json:"cleanupTmpDir,omitempty"`
	CertificatesDir       string    `json:"certificatesDir,omitempty"`
	CRISocket             string    `json:"criSocket,omitempty"`
	DryRun                bool      `json:"dryRun,omitempty"`
	Force                 bool      `json:"force,omitempty"`
	IgnorePreflightErrors []string  `json:"ignorePreflightErrors,omitempty"`
	SkipPhases            []string  `json:"skipPhases,omitempty"`
	UnmountFlags          []string  `json:"unmountFlags,omitempty"`
	Timeouts              *Timeouts `json:"timeouts,omitempty"`
}

// EtcdPorts are the local etcd member's ports.
type EtcdPorts struct {
	ClientPort  int32 `json:"clientPort,omitempty"`
	PeerPort    int32 `json:"peerPort,omitempty"`
	MetricsPort int32 `json:"metricsPort,omitempty"`
}

// ComponentPort is the secure (HTTPS) port of the controller-manager or scheduler.
type ComponentPort struct {
	SecurePort int32 `json:"securePort,omitempty"`
}

// Supervisor tunes local mode's process supervisor.
type Supervisor struct {
	// MaxRestartBackoff caps the exponential delay between restarts of a crashed component.
	MaxRestartBackoff *metav1.Duration `json:"maxRestartBackoff,omitempty"`
	// StopTimeout is how long a component gets after SIGTERM before SIGKILL.
	StopTimeout *metav1.Duration `json:"stopTimeout,omitempty"`
	// LogMaxSizeMB is the size at which a component log is rotated.
	LogMaxSizeMB int32 `json:"logMaxSizeMB,omitempty"`
	// LogMaxFiles is how many rotated logs are kept per component.
	LogMaxFiles int32 `json:"logMaxFiles,omitempty"`
}

// KubestrapConfiguration is kubestrap.io/v1alpha1: what kubeadm's format has no field for.
type KubestrapConfiguration struct {
	metav1.TypeMeta `json:",inline"`

	// Mode is auto, local, static-pod or systemd.
	Mode              string        `json:"mode,omitempty"`
	Etcd              EtcdPorts     `json:"etcd,omitempty"`
	ControllerManager ComponentPort `json:"controllerManager,omitempty"`
	Scheduler         ComponentPort `json:"scheduler,omitempty"`
	Supervisor        Supervisor    `json:"supervisor,omitempty"`
	CSRApprover       CSRApprover   `json:"csrApprover,omitempty"`
}

// CSRApprover configures kubestrap's approver of kubelet serving certificates.
type CSRApprover struct {
	// Disabled leaves the kubelets' serving CSRs to the operator (or another approver): init
	// then neither runs the approver nor creates its RBAC. Kubelets still request serving
	// certificates (serverTLSBootstrap) and kube-apiserver still verifies them.
	Disabled bool `json:"disabled,omitempty"`
	// HealthPort is where the approver serves /healthz and /readyz, plain HTTP on 127.0.0.1
	// only, for its static pod's probes, the supervisor, status and init's waits.
	HealthPort int32 `json:"healthPort,omitempty"`
}

// Config is everything one kubestrap init reads: the documents of one config file, defaulted.
type Config struct {
	Init      InitConfiguration
	Cluster   ClusterConfiguration
	Kubestrap KubestrapConfiguration

	// KubeletConfiguration and KubeProxyConfiguration are the file's component configuration
	// documents as JSON, holding only what the file sets (nil without such a document), checked
	// strictly against their types when loaded. Keeping what the user wrote, rather than a
	// decoded struct, is what lets kubelet.Configuration merge it field by field over kubestrap's
	// defaults, as kubeadm does: a decoded struct cannot tell "not set" from a zero value. The
	// kube-proxy document is kept (Marshal writes it back out) for the kube-proxy addon
	// (addons.KubeProxyConfiguration fills kubeadm's defaults in where it is silent).
	KubeletConfiguration   json.RawMessage
	KubeProxyConfiguration json.RawMessage

	// EtcdInitialCluster is set only by a control-plane join, never read from or written to a
	// file: the etcd cluster this node's member joins, as etcd's --initial-cluster
	// ("name=peerURL,..."), from the member list right after the member was added. Empty, the
	// member starts a new cluster of its own (init).
	EtcdInitialCluster string
}
