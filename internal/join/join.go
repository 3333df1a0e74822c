// Package join owns `kubestrap join`: the pre-flight checks, discovery of the cluster (through the
// discovery package), and then for a worker the node files a kubelet starts from
// (/etc/kubernetes/pki/ca.crt, bootstrap-kubelet.conf, the kubelet's config.yaml,
// kubeadm-flags.env and systemd unit) and the TLS bootstrap that turns the bootstrap token into
// the node's own client certificate and kubelet.conf — handed to a systemd-managed kubelet as
// kubeadm does, or performed by kubestrap itself when there is none; for a control-plane node
// (controlplane.go) the certificate download, the node's own control plane through init's
// functions, and its etcd member. Every file it writes is written through one fsutil.Recorder,
// and a join that fails at any step leaves the root dir as it found it (and a control-plane
// join's etcd membership as well).
package join

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/csrapprover"
	"github.com/kubestrap/kubestrap/internal/discovery"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/kubelet"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
	"github.com/kubestrap/kubestrap/internal/preflight"
)

// Identities in the kubeconfigs join writes, as kubeadm and the kubelet name them.
const (
	// BootstrapUser is the user of bootstrap-kubelet.conf (kubeadm's TLS bootstrap token user).
	BootstrapUser = "tls-bootstrap-token-user"
	// BootstrapClusterName is the cluster name in bootstrap-kubelet.conf.
	BootstrapClusterName = "kubernetes"
	// NodeUserPrefix and NodesGroup make a node's identity (the Node authorizer's convention).
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)

// Kubeconfig file names under /etc/kubernetes.
const (
	KubeletConf          = "kubelet.conf"
	BootstrapKubeletConf = "bootstrap-kubelet.conf"
)

// Options are the inputs of a join.
type Options struct {
	Paths  paths.Paths
	Config *config.JoinConfig
	DryRun bool
	// IgnorePreflightErrors are check names whose failures become warnings ("all" for every one),
	// added to nodeRegistration.ignorePreflightErrors.
	IgnorePreflightErrors []string
	// Log receives kubeadm-style "[phase] ..." progress lines; nil discards them.
	Log io.Writer

	// Discover replaces discovery (tests); nil runs token or file discovery as configured.
	Discover func(ctx context.Context) (*discovery.Result, error)
	// NewClient builds an API client from a kubeconfig; nil means client-go's.
	NewClient func(*clientcmdapi.Config) (kubeclient.Interface, error)
	// Kubelet is the host's systemd-managed kubelet, to which the TLS bootstrap is handed; nil
	// means kubestrap performs it. The caller decides (DetectKubelet).
	Kubelet KubeletService
	// Hostname is the host's name for the kubelet's flags; empty means os.Hostname().
	Hostname string
	// DefaultAddress is the node's address when kubeletExtraArgs names no node-ip; nil means the
	// first address of the default route's interface, as the kubelet picks it (tests replace it).
	DefaultAddress func() (string, error)
	// DiscoveryInterval overrides the discovery poll interval (tests).
	DiscoveryInterval time.Duration
	// ControlPlane are the seams of a control-plane join; nil means the real ones
	// (NewControlPlaneDeps).
	ControlPlane *ControlPlaneDeps
	// Host answers what a control-plane join's configuration detects; nil means this machine.
	Host config.Host
	// Images are the images phase's inputs (images.go).
	Images ImagesOptions
}

// Join is one run of the join workflow; its methods are the phases, in order. Each phase runs
// what it needs of the earlier ones when invoked alone (`join phase kubelet-start`).
type Join struct {
	o   Options
	log io.Writer
	// files writes every file of the join, in whatever package: the record of what was there
	// before is what a failed join rolls back.
	files *fsutil.Recorder

	discovered *discovery.Result
	// dryRunUndiscovered: a dry run went on without the cluster after discovery failed.
	dryRunUndiscovered bool
	// bootstrapConfig is bootstrap-kubelet.conf: the discovered cluster with the TLS bootstrap
	// credentials.
	bootstrapConfig *clientcmdapi.Config
	client          kubeclient.Interface
	// alg is the key algorithm of the cluster (its ClusterConfiguration's encryptionAlgorithm).
	alg string
	// restarted is set once the host's kubelet was restarted on our files.
	restarted bool
	// certFile is the dated certificate file TLSBootstrap wrote.
	certFile string
	// cp is a control-plane join's state, once the cluster's configuration was read.
	cp *controlPlane
}

// New validates the options and prepares a join.
func New(o Options) (*Join, error) {
	if o.Config == nil {
		return nil, errors.New("join: no configuration")
	}
	if o.Host == nil {
		o.Host = config.SystemHost{}
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	files := fsutil.NewRecorder(fsutil.For(o.DryRun, log))
	return &Join{o: o, log: log, files: files, alg: config.DefaultEncryptionAlgorithm}, nil
}

// SkipPhases are the phases the JoinConfiguration's skipPhases names.
func (j *Join) SkipPhases() []string { return j.o.Config.Join.SkipPhases }

// NodeName is the name the node joins as.
func (j *Join) NodeName() string { return j.o.Config.Join.NodeRegistration.Name }

func (j *Join) logf(format string, args ...any) { fmt.Fprintf(j.log, format+"\n", args...) }

func (j *Join) timeouts() *config.Timeouts { return j.o.Config.Join.Timeouts }

// ignored is the effective --ignore-preflight-errors list.
func (j *Join) ignored() []string {
	return append(append([]string{}, j.o.Config.Join.NodeRegistration.IgnorePreflightErrors...), j.o.IgnorePreflightErrors...)
}

// undoOnError rolls back everything this join wrote when *err is set: the deferred guard of
// every phase.
func (j *Join) undoOnError(err *error) {
	if *err == nil || j.o.DryRun {
		return
	}
	if errs := j.undoControlPlane(); len(errs) > 0 {
		*err = fmt.Errorf("%w\n(undoing this join's control plane also failed: %v)", *err, errors.Join(errs...))
	}
	if j.restarted && j.o.Kubelet != nil {
		// The kubelet would keep running on files that are about to disappear.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if serr := j.o.Kubelet.Stop(ctx); serr != nil {
			j.logf("[reset] WARNING: stopping the kubelet: %v", serr)
		}
		cancel()
	}
	if rerr := j.files.Rollback(); rerr != nil {
		*err = fmt.Errorf("%w\n(rolling back the files of this join also failed: %v)", *err, rerr)
		return
	}
	j.logf("[join] Removed the files written by this join attempt; %s is as before", j.o.Paths.Root())
}

// Preflight runs the checks that need no network: a node that has joined already (kubelet.conf,
// bootstrap-kubelet.conf or the cluster CA in place) is refused, as kubeadm refuses it.
func (j *Join) Preflight(ctx context.Context) error {
	j.logf("[preflight] Running pre-flight checks")
	p := j.o.Paths
	// join-addresses records node-ip at the end; a value that is not an address fails here,
	// before anything is written.
	if _, err := csrapprover.NodeIPArg(j.o.Config.Join.NodeRegistration.KubeletExtraArgs); err != nil {
		return err
	}
	checks := []preflight.Check{
		fileAvailable(p.Kubeconfig(KubeletConf), "/etc/kubernetes/"+KubeletConf,
			"this node has joined a cluster already: run 'kubestrap reset' first to join again"),
		fileAvailable(p.Kubeconfig(BootstrapKubeletConf), "/etc/kubernetes/"+BootstrapKubeletConf,
			"a previous join of this node is under way or was interrupted: run 'kubestrap reset' first"),
		fileAvailable(p.Host(j.o.Config.Join.CACertPath), j.o.Config.Join.CACertPath,
			"this node trusts a cluster CA already: run 'kubestrap reset' first"),
	}
	res, err := preflight.Run(checks, j.ignored())
	for _, w := range res.Warnings {
		j.logf("[preflight] WARNING %s", w)
	}
	if err != nil || !j.IsControlPlane() {
		return err
	}
	return j.ControlPlanePreflight(ctx)
}

// fileAvailable fails when path exists. The check name is kubeadm's (FileAvailable--<path with
// dashes>), so kubeadm's --ignore-preflight-errors values work unchanged.
func fileAvailable(path, hostPath, hint string) preflight.Check {
	name := "FileAvailable-" + strings.ReplaceAll(hostPath, "/", "-")
	return preflight.Check{Name: name, Run: func() error {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s already exists: %s", path, hint)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}}
}

// Discover finds and validates the cluster (token or file discovery) and prepares the TLS
// bootstrap credentials. It writes nothing.
func (j *Join) Discover(ctx context.Context) (err error) {
	if j.discovered != nil || j.dryRunUndiscovered {
		return nil
	}
	d := j.o.Config.Join.Discovery
	res, err := j.discover(ctx)
	if err != nil {
		if !j.o.DryRun {
			return err
		}
		j.logf("[dryrun] Discovery did not succeed (%v); continuing with what can be shown without the cluster", err)
		j.dryRunUndiscovered = true
		return nil
	}
	j.discovered = res
	var auth *clientcmdapi.AuthInfo
	switch {
	case d.TLSBootstrapToken != "":
		auth = &clientcmdapi.AuthInfo{Token: d.TLSBootstrapToken}
	case res.AuthInfo != nil:
		j.logf("[discovery] Using the credentials of the discovery file for the TLS bootstrap")
		auth = res.AuthInfo.DeepCopy()
	default:
		return errors.New("no credentials for the TLS bootstrap: the discovery file has none, so pass --tls-bootstrap-token (or --token) with a bootstrap token")
	}
	// kubeadm's bootstrap-kubelet.conf: cluster-info's server and CA, and the bootstrap
	// credentials (usually a token; a discovery file may carry others).
	kc := kubeconfig.TokenConfig(res.Server, res.CAData, BootstrapClusterName, BootstrapUser, "")
	kc.AuthInfos[BootstrapUser] = auth
	j.bootstrapConfig = kc
	return nil
}

func (j *Join) discover(ctx context.Context) (*discovery.Result, error) {
	if j.o.Discover != nil {
		return j.o.Discover(ctx)
	}
	d := j.o.Config.Join.Discovery
	timeout := j.timeouts().Discovery.Duration
	if j.o.DryRun && timeout > 5*time.Second {
		// A dry run needs no cluster; it only shows the real values when one answers promptly.
		timeout = 5 * time.Second
	}
	if bt := d.BootstrapToken; bt != nil {
		return discovery.Token(ctx, discovery.TokenOptions{
			Endpoint:                 bt.APIServerEndpoint,
			Token:                    bt.Token,
			CACertHashes:             bt.CACertHashes,
			UnsafeSkipCAVerification: bt.UnsafeSkipCAVerification,
			Timeout:                  timeout,
			Interval:                 j.o.DiscoveryInterval,
			Log:                      j.log,
		})
	}
	if d.File != nil {
		return discovery.File(ctx, discovery.FileOptions{Location: d.File.KubeConfigPath, Timeout: timeout, Interval: j.o.DiscoveryInterval, Log: j.log})
	}
	return nil, errors.New("no discovery configured: pass the control plane's host:port with --token and --discovery-token-ca-cert-hash, or --discovery-file")
}

// bootstrapClient is a client with the TLS bootstrap identity.
func (j *Join) bootstrapClient() (kubeclient.Interface, error) {
	if j.client != nil {
		return j.client, nil
	}
	c, err := j.newClient(j.bootstrapConfig)
	if err != nil {
		return nil, err
	}
	j.client = c
	return c, nil
}

func (j *Join) newClient(kc *clientcmdapi.Config) (kubeclient.Interface, error) {
	if j.o.NewClient != nil {
		return j.o.NewClient(kc)
	}
	// -v 2: each request, never the bootstrap token
	return kubeclient.FromKubeconfig(kc, kubeclient.Options{UserAgent: "kubestrap-join", Log: j.log})
}

// withAPIRetry runs fn until it succeeds, fails with an answer retrying cannot change (denied,
// not found, invalid), or timeouts.kubernetesAPICall passes.
func (j *Join) withAPIRetry(ctx context.Context, fn func(context.Context) error) error {
	return kubeclient.Retry(ctx, j.timeouts().KubernetesAPICall.Duration, kubeclient.PermanentAPIError, fn)
}

// systemConfigMap reads ConfigMap kube-system/name with the bootstrap token (init lets the
// bootstrappers group read the ones join needs), retrying passing API errors.
func (j *Join) systemConfigMap(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	c, err := j.bootstrapClient()
	if err != nil {
		return nil, err
	}
	var cm *corev1.ConfigMap
	err = j.withAPIRetry(ctx, func(ctx context.Context) error {
		var err error
		cm, err = c.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	return cm, err
}

// KubeletStart reads the cluster's kubelet configuration with the bootstrap identity, refuses a
// name taken by a Ready node, and writes the node files: the cluster CA, bootstrap-kubelet.conf,
// and the kubelet's config.yaml, kubeadm-flags.env and systemd unit. With a systemd-managed
// kubelet it then restarts it, as kubeadm's kubelet-start does.
func (j *Join) KubeletStart(ctx context.Context) (err error) {
	defer j.undoOnError(&err)
	if err := j.Discover(ctx); err != nil {
		return err
	}
	p := j.o.Paths
	kc, err := j.clusterKubeletConfig(ctx)
	if err != nil {
		return err
	}
	if err := j.checkExistingNode(ctx); err != nil {
		return err
	}

	caPath := p.Host(j.o.Config.Join.CACertPath)
	bootstrapPath := p.Kubeconfig(BootstrapKubeletConf)
	if j.discovered == nil {
		// A dry run without a cluster has no CA or kubeconfig to pass to the writer: it can
		// only name the files.
		j.logf("[dryrun] Would write file %s", caPath)
		j.logf("[dryrun] Would write file %s", bootstrapPath)
	} else {
		data, err := clientcmd.Write(*j.bootstrapConfig)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", bootstrapPath, err)
		}
		j.logf("[kubelet-start] Writing the cluster CA to %s", caPath)
		if err := j.files.WriteFile(caPath, j.discovered.CAData, pki.CertFileMode); err != nil {
			return err
		}
		j.logf("[kubelet-start] Writing the TLS bootstrap kubeconfig to %s", bootstrapPath)
		if err := j.files.WriteFile(bootstrapPath, data, pki.KeyFileMode); err != nil {
			return err
		}
	}

	nr := j.o.Config.Join.NodeRegistration
	flags := kubelet.NodeFlags{NodeName: nr.Name, CRISocket: nr.CRISocket, Taints: nr.Taints, ExtraArgs: nr.KubeletExtraArgs, Hostname: j.o.Hostname}
	if err := kubelet.WriteNodeFiles(p, kc, flags, kubelet.Options{Files: j.files, Log: j.log}); err != nil {
		return err
	}

	if j.o.Kubelet == nil {
		return nil
	}
	if j.o.DryRun {
		j.logf("[dryrun] Would restart the kubelet (systemctl daemon-reload && systemctl restart kubelet)")
		return nil
	}
	// What the kubelet writes during its own TLS bootstrap must go too if the join fails.
	if err := j.files.Track(p.Kubeconfig(KubeletConf)); err != nil {
		return err
	}
	if err := j.files.Watch(p.KubeletPKIDir()); err != nil {
		return err
	}
	j.logf("[kubelet-start] Restarting the kubelet")
	j.restarted = true
	return j.o.Kubelet.Restart(ctx)
}

// clusterKubeletConfig reads the cluster's KubeletConfiguration (kube-system/kubelet-config,
// which init lets the bootstrappers group read) and the cluster's key algorithm. In a dry run
// without a cluster it falls back to kubeadm's defaults.
func (j *Join) clusterKubeletConfig(ctx context.Context) (*kubeletv1beta1.KubeletConfiguration, error) {
	if j.discovered == nil {
		// Only in a dry run without a reachable cluster.
		j.logf("[dryrun] Would read the kubelet configuration from ConfigMap kube-system/%s; showing the defaults instead", bootstrap.KubeletConfigConfigMap)
		return kubelet.Configuration(&config.Config{Cluster: config.ClusterConfiguration{Networking: config.Networking{ServiceSubnet: config.DefaultServiceSubnet, DNSDomain: config.DefaultDNSDomain}}})
	}
	j.logf("[kubelet-start] Reading the kubelet configuration from ConfigMap kube-system/%s", bootstrap.KubeletConfigConfigMap)
	cm, err := j.systemConfigMap(ctx, bootstrap.KubeletConfigConfigMap)
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap kube-system/%s with the bootstrap token: %w (init uploads it in its upload-config phase)", bootstrap.KubeletConfigConfigMap, err)
	}
	data, ok := cm.Data[bootstrap.KubeletConfigKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap kube-system/%s has no %q key", bootstrap.KubeletConfigConfigMap, bootstrap.KubeletConfigKey)
	}
	kc, err := kubelet.Unmarshal([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("ConfigMap kube-system/%s: %w", bootstrap.KubeletConfigConfigMap, err)
	}

	// The node's key follows the cluster's encryptionAlgorithm; a cluster that does not say (or
	// does not let us read it) gets kubestrap's default.
	kcm, err := j.systemConfigMap(ctx, bootstrap.KubeadmConfigConfigMap)
	if err == nil {
		var cc config.ClusterConfiguration
		if yerr := yaml.Unmarshal([]byte(kcm.Data[bootstrap.ClusterConfigKey]), &cc); yerr == nil && cc.EncryptionAlgorithm != "" {
			if pki.ValidateAlgorithm(cc.EncryptionAlgorithm) == nil {
				j.alg = cc.EncryptionAlgorithm
			} else {
				j.logf("[kubelet-start] WARNING: the cluster's encryptionAlgorithm %q is unknown; using %s for the node's key", cc.EncryptionAlgorithm, j.alg)
			}
		}
	}
	return kc, nil
}

// checkExistingNode refuses a node name that a Ready node already has: two kubelets would fight
// over one Node object. A NotReady node of the name is taken over, as kubeadm allows (a node
// re-joining after reset).
func (j *Join) checkExistingNode(ctx context.Context) error {
	if j.discovered == nil {
		return nil
	}
	c, err := j.bootstrapClient()
	if err != nil {
		return err
	}
	name := j.NodeName()
	var node *corev1.Node
	err = j.withAPIRetry(ctx, func(ctx context.Context) error {
		var err error
		node, err = c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err
	})
	check := preflight.Check{Name: "ExistingReadyNode", Run: func() error {
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("cannot check whether a Node %q exists: %v", name, err)
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return fmt.Errorf("a Node with name %q and status \"Ready\" already exists in the cluster: delete it (kubectl delete node %s) or join with another --node-name", name, name)
			}
		}
		return nil
	}}
	res, perr := preflight.Run([]preflight.Check{check}, j.ignored())
	for _, w := range res.Warnings {
		j.logf("[preflight] WARNING %s", w)
	}
	return perr
}

// loadBootstrapConfig reads bootstrap-kubelet.conf written by an earlier `join phase
// kubelet-start`, for a tls-bootstrap phase run on its own.
func (j *Join) loadBootstrapConfig() (bool, error) {
	path := j.o.Paths.Kubeconfig(BootstrapKubeletConf)
	kc, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("loading %s: %w", path, err)
	}
	j.bootstrapConfig = kc
	return true, nil
}

// cluster returns the server and CA of the bootstrap kubeconfig.
func (j *Join) cluster() (string, []byte, error) {
	kc := j.bootstrapConfig
	ctx, ok := kc.Contexts[kc.CurrentContext]
	if !ok {
		return "", nil, fmt.Errorf("the bootstrap kubeconfig has no context %q", kc.CurrentContext)
	}
	cl, ok := kc.Clusters[ctx.Cluster]
	if !ok || cl.Server == "" || len(cl.CertificateAuthorityData) == 0 {
		return "", nil, fmt.Errorf("the bootstrap kubeconfig's cluster %q lacks a server or embedded CA", ctx.Cluster)
	}
	return cl.Server, cl.CertificateAuthorityData, nil
}

// Commit makes the join's changes final; after it a later error no longer rolls them back.
func (j *Join) Commit() {
	j.files.Forget()
	if j.cp != nil && j.cp.etcd != nil {
		j.cp.etcd.Close()
		j.cp.etcd = nil
	}
}

// Summary prints the closing message of a successful join.
func (j *Join) Summary(w io.Writer) {
	p := j.o.Paths
	if j.o.DryRun {
		fmt.Fprintf(w, "[dryrun] Finished dry-running the join of node %q; nothing was written under %s\n", j.NodeName(), p.Root())
		return
	}
	if j.IsControlPlane() {
		fmt.Fprintf(w, "\nThis node has joined the cluster as control-plane node %q:\n", j.NodeName())
		fmt.Fprintln(w, "* The cluster's shared certificates were downloaded and this node's own certificates and kubeconfigs made.")
		fmt.Fprintln(w, "* Its etcd member joined as a learner and was promoted to a voting member.")
		fmt.Fprintln(w, "* Its kube-apiserver, kube-controller-manager and kube-scheduler run and are healthy.")
		fmt.Fprintf(w, "\nTo use the cluster from this node:\n\n  kubectl --kubeconfig %s get pods -n kube-system\n", p.Kubeconfig("admin.conf"))
		return
	}
	fmt.Fprintf(w, "\nThis node has joined the cluster as %q:\n", j.NodeName())
	fmt.Fprintln(w, "* Certificate signing request was sent to apiserver and a response was received.")
	if j.o.Kubelet != nil {
		fmt.Fprintln(w, "* The Kubelet was informed of the new secure connection details.")
	} else {
		fmt.Fprintf(w, "* %s authenticates as %s%s with the client certificate %s.\n", p.Kubeconfig(KubeletConf), NodeUserPrefix, j.NodeName(), p.KubeletClientCert())
		fmt.Fprintf(w, "* A kubelet started with --kubeconfig=%s --config=%s (the unit and drop-in under %s) needs nothing more.\n",
			p.Kubeconfig(KubeletConf), p.KubeletConfig(), p.SystemdUnitDir())
	}
	fmt.Fprintln(w, "\nRun 'kubectl get nodes' on the control-plane to see this node join the cluster.")
}
