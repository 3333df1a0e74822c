// Package initflow owns the init workflow: the ordered phases that turn a host into a control-plane
// node (preflight, certs, kubeconfig, etcd, control-plane, kubelet-start, wait-control-plane,
// upload-config, bootstrap-token, show-join-command) and the state they share. Each phase calls the
// package that owns its work; the command layer only builds the Data and runs the phases.
package initflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/controlplane"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/kubelet"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
	"github.com/kubestrap/kubestrap/internal/preflight"
	"github.com/kubestrap/kubestrap/internal/supervisor"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// Options are the run's choices beyond the configuration.
type Options struct {
	DryRun          bool
	IgnorePreflight []string
	SkipTokenPrint  bool
	// Out receives what the user reads after init (how to use admin.conf, the join command);
	// Log the "[phase]" progress lines.
	Out, Log io.Writer
}

// Data is what every init phase works on; built once per run.
type Data struct {
	cfg             *config.Config
	p               paths.Paths
	mode            string
	dryRun          bool
	ignorePreflight []string
	skipTokenPrint  bool
	out, log        io.Writer

	client kubernetes.Interface
	// skip is a whole run's --skip-phases merged with the configuration's skipPhases; CheckStarted
	// reads it after the run.
	skip []string
	// ownControlPlaneRunning is set when this root's supervisor runs (see AlreadyUp): an
	// interrupted init being completed, whose components hold the ports.
	ownControlPlaneRunning bool
	// installedExe is the root-owned copy of kubestrap that systemd mode's units run.
	installedExe string
}

// New prepares a run of init for cfg under p in mode (already resolved from auto). It fails before
// anything is written when this build cannot run mode.
func New(cfg *config.Config, p paths.Paths, mode string, o Options) (*Data, error) {
	if err := CheckModeAvailable(mode); err != nil {
		return nil, err
	}
	d := &Data{cfg: cfg, p: p, mode: mode, dryRun: o.DryRun || cfg.Init.DryRun,
		ignorePreflight: o.IgnorePreflight, skipTokenPrint: o.SkipTokenPrint, out: o.Out, log: o.Log}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Nothing will be written under %s\n", p.Root())
	}
	return d, nil
}

// RunAll runs every phase not in skip (and not in the configuration's skipPhases), as
// "kubestrap init" does.
func RunAll(ctx context.Context, r *workflow.Runner[*Data], d *Data, skip []string) error {
	d.skip = d.Skip(skip)
	return r.Run(ctx, d, d.skip)
}

// Skip is what a full run skips: the configuration's skipPhases, then the --skip-phases given.
func (d *Data) Skip(flag []string) []string {
	return workflow.MergeSkip(d.cfg.Init.SkipPhases, flag)
}

func (d *Data) pkiOptions() pki.Options { return pki.Options{DryRun: d.dryRun, Log: d.log} }

// kubeadmOnlyPhases are the phases of kubeadm v1.37.2's init that kubestrap has no counterpart
// for yet: skipping them is accepted (kubeadm configurations list them) and only noted.
var kubeadmOnlyPhases = []string{
	"upload-certs", "mark-control-plane",
	"kubelet-finalize", "kubelet-finalize/enable-client-cert-rotation",
	"addon", "addon/coredns", "addon/kube-proxy",
}

// NewRunner returns init's phases in kubeadm's order, each a call into the package that owns the
// work; kubestrap's run modes decide what the etcd, control-plane and kubelet-start phases write.
func NewRunner() *workflow.Runner[*Data] {
	certPhases := []workflow.Phase[*Data]{}
	for _, name := range pki.CertNames(nil) {
		certPhases = append(certPhases, workflow.Phase[*Data]{
			Name:  name,
			Short: "Generate the " + name + " certificate and key",
			// With external etcd the etcd certificates are not kubestrap's to make.
			RunIf: func(ctx context.Context, d *Data) (bool, string) {
				return slices.Contains(pki.CertNames(d.cfg), name), ""
			},
			Run: func(ctx context.Context, d *Data) error {
				return pki.EnsureCerts(d.cfg, d.p, []string{name}, d.pkiOptions())
			},
		})
	}
	kubeconfigPhases := []workflow.Phase[*Data]{}
	for _, name := range kubeconfig.KubeconfigNames() {
		kubeconfigPhases = append(kubeconfigPhases, workflow.Phase[*Data]{
			Name:  name,
			Short: "Generate the " + name + " kubeconfig file",
			Run: func(ctx context.Context, d *Data) error {
				return kubeconfig.EnsureKubeconfigs(d.cfg, d.p, []string{name}, d.pkiOptions())
			},
		})
	}
	return withSavedConfig(&workflow.Runner[*Data]{Command: "init", KubeadmOnly: kubeadmOnlyPhases, Phases: []workflow.Phase[*Data]{
		{Name: "preflight", Short: "Run pre-flight checks", Run: runPreflight},
		// The selected certificates in one call, so that independent keys are generated in
		// parallel.
		{Name: "certs", Short: "Certificate generation", Phases: certPhases, RunChildren: func(ctx context.Context, d *Data, names []string) error {
			if len(names) == 0 {
				return nil
			}
			return pki.EnsureCerts(d.cfg, d.p, names, d.pkiOptions())
		}},
		{Name: "kubeconfig", Short: "Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file", Phases: kubeconfigPhases, RunChildren: func(ctx context.Context, d *Data, names []string) error {
			if len(names) == 0 {
				return nil
			}
			return kubeconfig.EnsureKubeconfigs(d.cfg, d.p, names, d.pkiOptions())
		}},
		{Name: "etcd", Short: "Prepare the local etcd member", Phases: []workflow.Phase[*Data]{
			{Name: "local", Short: "Write the local etcd member's data dir and, in static-pod or systemd mode, its manifest or unit", Run: runEtcdLocal},
		}},
		{Name: "control-plane", Short: "Write the control plane components' files and, in local or systemd mode, start them", Phases: []workflow.Phase[*Data]{
			{Name: "apiserver", Short: "Write the kube-apiserver's files (encryption config, audit policy, manifest or unit)", Run: componentPhase(components.APIServerName)},
			{Name: "controller-manager", Short: "Write the kube-controller-manager's manifest or unit", Run: componentPhase(components.ControllerManagerName)},
			{Name: "scheduler", Short: "Write the kube-scheduler's manifest or unit", Run: componentPhase(components.SchedulerName)},
		}, Finish: startControlPlane},
		{Name: "kubelet-start", Short: "Write the kubelet's configuration and (re)start it (static-pod mode)", Run: runKubeletStart},
		{Name: "wait-control-plane", Short: "Wait for the control plane to be healthy", RunIf: controlPlaneRunning, Run: runWaitControlPlane},
		{Name: "upload-config", Aliases: []string{"uploadconfig"}, Short: "Upload the kubeadm and kubelet configuration to ConfigMaps", Phases: []workflow.Phase[*Data]{
			{Name: "kubeadm", Short: "Upload the ClusterConfiguration to kube-system/kubeadm-config", RunIf: controlPlaneRunning, Run: runUploadKubeadmConfig},
			{Name: "kubelet", Short: "Upload the kubelet configuration to kube-system/kubelet-config", RunIf: controlPlaneRunning, Run: runUploadKubeletConfig},
		}},
		{Name: "bootstrap-token", Aliases: []string{"bootstraptoken"}, Short: "Create the bootstrap token, its RBAC rules and the cluster-info ConfigMap", RunIf: controlPlaneRunning, Run: runBootstrapToken},
		{Name: "show-join-command", Short: "Show the join command for worker nodes", RunIf: controlPlaneRunning, Run: runShowJoinCommand},
	}})
}

// controlPlaneRunning is the RunIf of the phases that talk to the new control plane. In
// static-pod or systemd mode on a host whose systemd kubestrap cannot drive (not PID 1, or another
// root dir), init has written the files and printed the commands that start them; a whole init
// then skips these phases, with one note for all of them (the runner prints a reason once), and
// CheckStarted makes it fail: nothing runs. A dry run, and a single "init phase" run by an operator
// who started the control plane, always run them.
func controlPlaneRunning(ctx context.Context, d *Data) (bool, string) {
	if d.dryRun || !workflow.WholeRun(ctx) || shouldWaitForControlPlane(d) {
		return true, ""
	}
	return false, fmt.Sprintf("[init] The control plane was not started by kubestrap (mode %q); skipping the phases that need it: wait-control-plane, upload-config, bootstrap-token, show-join-command.\n"+
		"[init] Start it with the commands above, then run: kubestrap init phase upload-config all && kubestrap init phase bootstrap-token && kubestrap init phase show-join-command", d.mode)
}

func runPreflight(ctx context.Context, d *Data) error {
	fmt.Fprintln(d.log, "[preflight] Running pre-flight checks")
	cfg, sys := d.cfg, preflight.Host{}
	checks := []preflight.Check{preflight.AddressOnHost(sys, cfg.AdvertiseAddress())}
	if d.ownControlPlaneRunning {
		// The ports are held by this root's own components, which init continues with.
		fmt.Fprintln(d.log, "[preflight] Skipping the port checks: this root's control plane holds them")
	} else {
		checks = append(checks,
			preflight.PortFree(sys, "kube-apiserver", preflight.HostPort("", cfg.BindPort())),
			preflight.PortFree(sys, "kube-controller-manager", preflight.HostPort("127.0.0.1", cfg.ControllerManagerPort())),
			preflight.PortFree(sys, "kube-scheduler", preflight.HostPort("127.0.0.1", cfg.SchedulerPort())),
		)
	}
	if cfg.LocalEtcd() && !d.ownControlPlaneRunning {
		checks = append(checks,
			preflight.PortFree(sys, "etcd client", preflight.HostPort(cfg.AdvertiseAddress(), cfg.EtcdClientPort())),
			preflight.PortFree(sys, "etcd client", preflight.HostPort(cfg.LoopbackHost(), cfg.EtcdClientPort())),
			preflight.PortFree(sys, "etcd peer", preflight.HostPort(cfg.AdvertiseAddress(), cfg.EtcdPeerPort())),
			preflight.PortFree(sys, "etcd metrics", preflight.HostPort(cfg.LoopbackHost(), cfg.EtcdMetricsPort())),
			preflight.DirAvailable("DirAvailable--var-lib-etcd", d.p.EtcdDataDir(etcdDataDir(cfg)), func() bool {
				// A previous init of this root that stopped halfway left its own etcd data, with
				// the etcd CA that signed it; init continues from there.
				_, err := os.Stat(d.p.CertDir(cfg.Cluster.CertificatesDir) + "/etcd/ca.crt")
				return err == nil
			}),
		)
	}
	res, err := preflight.Run(checks, d.ignorePreflight)
	for _, w := range res.Warnings {
		fmt.Fprintf(d.log, "[preflight] WARNING %s\n", w)
	}
	return err
}

func etcdDataDir(cfg *config.Config) string {
	if cfg.Cluster.Etcd.Local != nil {
		return cfg.Cluster.Etcd.Local.DataDir
	}
	return ""
}

func runEtcdLocal(ctx context.Context, d *Data) error {
	if !d.cfg.LocalEtcd() {
		fmt.Fprintln(d.log, "[etcd] External etcd is configured; nothing to prepare")
		return nil
	}
	dir := d.p.EtcdDataDir(etcdDataDir(d.cfg))
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would create directory %s (0700)\n", dir)
	} else {
		fmt.Fprintf(d.log, "[etcd] Using data directory %s\n", dir)
		// Parents get the usual 0755; only the data dir itself is private.
		if err := os.MkdirAll(filepath.Dir(dir), fsutil.DirMode); err != nil {
			return fmt.Errorf("create etcd data dir: %w", err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create etcd data dir: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	return writeComponent(d, components.Etcd(d.cfg, d.p))
}

// componentPhase writes what the run mode needs for one control-plane component.
func componentPhase(name string) func(context.Context, *Data) error {
	return func(ctx context.Context, d *Data) error {
		if name == components.APIServerName {
			if err := components.EnsureAPIServerFiles(d.cfg, d.p, components.FileOptions{DryRun: d.dryRun, Log: d.log}); err != nil {
				return err
			}
		}
		for _, c := range components.ControlPlane(d.cfg, d.p) {
			if c.Name == name {
				for _, w := range c.Warnings {
					fmt.Fprintf(d.log, "[control-plane] WARNING: %s\n", w)
				}
				return writeComponent(d, c)
			}
		}
		return fmt.Errorf("unknown control-plane component %q", name)
	}
}

// writeComponent writes a component's manifest or unit; local mode keeps its command line in the
// supervisor's spec instead, written when the supervisor starts.
func writeComponent(d *Data, c components.Component) error {
	switch d.mode {
	case config.ModeStaticPod:
		return writeStaticPodManifest(d, c)
	case config.ModeSystemd:
		return writeSystemdUnit(d, c)
	}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would run %s as:\n  %s %s\n", c.Name, d.p.ComponentBinary(c.Name), strings.Join(c.Args, " \\\n    "))
	}
	return nil
}

// startControlPlane starts the components whose files the control-plane phase wrote: through the
// local supervisor or systemd. In static-pod mode the kubelet-start phase does it.
func startControlPlane(ctx context.Context, d *Data) error {
	switch d.mode {
	case config.ModeSystemd:
		return startSystemd(ctx, d)
	case config.ModeStaticPod:
		return nil
	}
	cps := components.ControlPlane(d.cfg, d.p)
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would start the local supervisor for %s\n", componentNames(cps))
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the kubestrap executable: %w", err)
	}
	spec := controlplane.SupervisorSpec(d.cfg, d.p, cps, exe)
	fmt.Fprintf(d.log, "[control-plane] Starting %s under the local supervisor (logs in %s)\n", componentNames(cps), d.p.LogDir())
	pid, err := supervisor.Start(d.p, spec, exe)
	if errors.Is(err, supervisor.ErrAlreadyRunning) {
		fmt.Fprintf(d.log, "[control-plane] The supervisor of this root is already running (pid %d)\n", pid)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(d.log, "[control-plane] Supervisor running with pid %d\n", pid)
	return nil
}

func componentNames(cps []components.Component) string {
	var names []string
	for _, c := range cps {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

func runWaitControlPlane(ctx context.Context, d *Data) error {
	if d.dryRun {
		fmt.Fprintln(d.log, "[dryrun] Would wait for the control plane to become healthy")
		return nil
	}
	var targets []controlplane.Target
	for _, c := range components.ControlPlane(d.cfg, d.p) {
		t := controlplane.Target{Name: c.Name, URL: c.HealthURL()}
		switch d.mode {
		case config.ModeLocal:
			t.LogFile = d.p.ComponentLog(c.Name)
		case config.ModeSystemd:
			t.LogHint = "journalctl -u " + c.Name + ".service"
		default:
			t.LogHint = "crictl logs $(crictl ps -a --name " + c.Name + " -q | head -1)"
		}
		targets = append(targets, t)
	}
	if err := controlplane.Wait(ctx, targets, d.cfg.ControlPlaneHealthTimeout(), 100*time.Millisecond, supervisor.CheckHealth, d.log); err != nil {
		return err
	}
	c, err := d.clientset(ctx)
	if err != nil {
		return err
	}
	return controlplane.WaitControllers(ctx, c, d.cfg.ControlPlaneHealthTimeout(), 100*time.Millisecond, d.log)
}

// clientset returns a client authenticated with admin.conf, creating the admin binding through
// super-admin.conf first, since admin.conf's group has no rights until that binding exists.
func (d *Data) clientset(ctx context.Context) (kubernetes.Interface, error) {
	if d.client != nil {
		return d.client, nil
	}
	super, err := clientFromKubeconfig(d.p.Kubeconfig("super-admin.conf"), d.log)
	if err != nil {
		return nil, err
	}
	if err := bootstrap.EnsureAdminBinding(ctx, super); err != nil {
		return nil, err
	}
	admin, err := clientFromKubeconfig(d.p.Kubeconfig("admin.conf"), d.log)
	if err != nil {
		return nil, err
	}
	d.client = admin
	return admin, nil
}

// initComplete asks the running cluster, with admin.conf and within 5 s, whether init finished.
func initComplete(ctx context.Context, d *Data) bool {
	c, err := clientFromKubeconfig(d.p.Kubeconfig("admin.conf"), d.log)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return bootstrap.InitComplete(ctx, c)
}

func clientFromKubeconfig(path string, log io.Writer) (kubernetes.Interface, error) {
	return kubeclient.FromKubeconfigFile(path, kubeclient.Options{Log: log}) // -v 2 logs each request
}

// withAdminClient runs fn with the admin client, retrying every error until
// timeouts.kubernetesAPICall passes: right after /readyz the apiserver can still deny writes for
// a moment while its RBAC caches fill, so even Forbidden is not final here.
func (d *Data) withAdminClient(ctx context.Context, fn func(context.Context, kubernetes.Interface) error) error {
	return kubeclient.Retry(ctx, d.cfg.KubernetesAPICallTimeout(), nil, func(ctx context.Context) error {
		c, err := d.clientset(ctx)
		if err != nil {
			return err
		}
		return fn(ctx, c)
	})
}

func runUploadKubeadmConfig(ctx context.Context, d *Data) error {
	b, err := config.MarshalCluster(d.cfg)
	if err != nil {
		return err
	}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would create ConfigMap kube-system/%s with:\n%s", bootstrap.KubeadmConfigConfigMap, b)
		return nil
	}
	fmt.Fprintf(d.log, "[upload-config] Storing the configuration in ConfigMap %q in the \"kube-system\" namespace\n", bootstrap.KubeadmConfigConfigMap)
	return d.withAdminClient(ctx, func(ctx context.Context, c kubernetes.Interface) error {
		return bootstrap.UploadClusterConfig(ctx, c, b)
	})
}

func runUploadKubeletConfig(ctx context.Context, d *Data) error {
	kc, err := kubelet.Configuration(d.cfg)
	if err != nil {
		return err
	}
	b, err := kubelet.Marshal(kc)
	if err != nil {
		return err
	}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would create ConfigMap kube-system/%s with:\n%s", bootstrap.KubeletConfigConfigMap, b)
		return nil
	}
	fmt.Fprintf(d.log, "[kubelet] Creating ConfigMap %q in namespace kube-system with the configuration for the kubelets in the cluster\n", bootstrap.KubeletConfigConfigMap)
	return d.withAdminClient(ctx, func(ctx context.Context, c kubernetes.Interface) error {
		return bootstrap.UploadKubeletConfig(ctx, c, b)
	})
}

func runBootstrapToken(ctx context.Context, d *Data) error {
	if err := config.EnsureBootstrapToken(d.cfg); err != nil {
		return err
	}
	tokens, err := configTokens(d.cfg, time.Now())
	if err != nil {
		return err
	}
	clusterInfo, err := d.clusterInfoKubeconfig()
	if err != nil && !d.dryRun {
		return err
	}
	if d.dryRun {
		for _, t := range tokens {
			fmt.Fprintf(d.log, "[dryrun] Would create Secret kube-system/bootstrap-token-%s\n", t.ID)
		}
		fmt.Fprintln(d.log, "[dryrun] Would create the bootstrap RBAC bindings and ConfigMap kube-public/cluster-info")
		return nil
	}
	fmt.Fprintln(d.log, "[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles")
	return d.withAdminClient(ctx, func(ctx context.Context, c kubernetes.Interface) error {
		for _, t := range tokens {
			if err := bootstrap.CreateOrUpdateToken(ctx, c, t); err != nil {
				return err
			}
		}
		if err := bootstrap.EnsureNodeBootstrapRBAC(ctx, c); err != nil {
			return err
		}
		if err := bootstrap.EnsureClusterInfo(ctx, c, clusterInfo); err != nil {
			return err
		}
		return bootstrap.SignClusterInfo(ctx, c, tokens...)
	})
}

// configTokens turns the configured bootstrap tokens into token objects with absolute expiry.
func configTokens(cfg *config.Config, now time.Time) ([]bootstrap.Token, error) {
	var out []bootstrap.Token
	for _, bt := range cfg.Init.BootstrapTokens {
		id, secret, err := bootstrap.ParseToken(bt.Token)
		if err != nil {
			return nil, err
		}
		t := bootstrap.Token{ID: id, Secret: secret, Description: bt.Description, Usages: bt.Usages, Groups: bt.Groups}
		switch {
		case bt.Expires != nil:
			t.Expires = bt.Expires.Time
		case bt.TTL != nil && bt.TTL.Duration > 0:
			t.Expires = now.Add(bt.TTL.Duration)
		}
		out = append(out, t)
	}
	return out, nil
}

// clusterInfoKubeconfig is the cluster-info payload: only the cluster entry (server and CA) of
// admin.conf, never credentials.
func (d *Data) clusterInfoKubeconfig() ([]byte, error) {
	caPEM, err := os.ReadFile(d.p.CertDir(d.cfg.Cluster.CertificatesDir) + "/ca.crt")
	if err != nil {
		return nil, fmt.Errorf("read the cluster CA: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[""] = &clientcmdapi.Cluster{Server: d.cfg.ControlPlaneURL(), CertificateAuthorityData: caPEM}
	return clientcmd.Write(*kc)
}

func runShowJoinCommand(ctx context.Context, d *Data) error {
	admin := d.p.Kubeconfig("admin.conf")
	fmt.Fprintf(d.out, `
Your Kubernetes control-plane has initialized successfully!

To start using your cluster, run:

  export KUBECONFIG=%s
  kubectl get namespaces

or, as a regular user:

  mkdir -p $HOME/.kube
  sudo cp -i %s $HOME/.kube/config
  sudo chown $(id -u):$(id -g) $HOME/.kube/config

`, admin, admin)
	if d.skipTokenPrint {
		return nil
	}
	line, err := joinCommand(d)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "Then you can join any number of worker nodes by running the following on each as root:\n\n%s\n", line)
	return nil
}

func joinCommand(d *Data) (string, error) {
	if err := config.EnsureBootstrapToken(d.cfg); err != nil {
		return "", err
	}
	hash := "sha256:<hash of the CA that init would generate>"
	if ca, _, err := pki.LoadCA(d.p, d.cfg); err == nil {
		hash = pki.PublicKeyPin(ca)
	} else if !d.dryRun {
		return "", err
	}
	endpoint := strings.TrimPrefix(d.cfg.ControlPlaneURL(), "https://")
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		return "", fmt.Errorf("control plane endpoint %q: %w", endpoint, err)
	}
	return bootstrap.JoinCommand(endpoint, d.cfg.Init.BootstrapTokens[0].Token, hash), nil
}
