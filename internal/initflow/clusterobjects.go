package initflow

// The phases that talk to the new control plane: upload-config, bootstrap-token and
// show-join-command, the admin client they share, and when a whole init skips them.

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/copycerts"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubelet"
	"github.com/kubestrap/kubestrap/internal/pki"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

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
	upload, uploadFlag := "", ""
	if d.uploadCerts {
		// The key is not repeated here: the operator passes the same --certificate-key (or
		// gets a new one printed).
		upload, uploadFlag = " && kubestrap init phase upload-certs --upload-certs", " --upload-certs"
	}
	return false, fmt.Sprintf("[init] The control plane was not started by kubestrap (mode %q); skipping the phases that need it: wait-control-plane, upload-config, upload-certs, mark-control-plane, bootstrap-token, csr-approver, addon, show-join-command.\n"+
		"[init] Start it with the commands above, then run: kubestrap init phase upload-config all%s && kubestrap init phase mark-control-plane && kubestrap init phase bootstrap-token && kubestrap init phase csr-approver && kubestrap init phase addon all && kubestrap init phase show-join-command%s", d.mode.Name(), upload, uploadFlag)
}

// clientset returns a client authenticated with admin.conf, creating the admin binding through
// super-admin.conf first, since admin.conf's group has no rights until that binding exists.
func (d *Data) clientset(ctx context.Context) (kubeclient.Interface, error) {
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

func clientFromKubeconfig(path string, log io.Writer) (kubeclient.Interface, error) {
	return kubeclient.FromKubeconfigFile(path, kubeclient.Options{Log: log}) // -v 2 logs each request
}

// withAdminClient runs fn with the admin client, retrying every error until
// timeouts.kubernetesAPICall passes: right after /readyz the apiserver can still deny writes for
// a moment while its RBAC caches fill, so even Forbidden is not final here.
func (d *Data) withAdminClient(ctx context.Context, fn func(context.Context, kubeclient.Interface) error) error {
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
	return uploadConfigMap(ctx, d, bootstrap.KubeadmConfigConfigMap, b,
		fmt.Sprintf("[upload-config] Storing the configuration in ConfigMap %q in the \"kube-system\" namespace", bootstrap.KubeadmConfigConfigMap),
		bootstrap.UploadClusterConfig)
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
	return uploadConfigMap(ctx, d, bootstrap.KubeletConfigConfigMap, b,
		fmt.Sprintf("[kubelet] Creating ConfigMap %q in namespace kube-system with the configuration for the kubelets in the cluster", bootstrap.KubeletConfigConfigMap),
		bootstrap.UploadKubeletConfig)
}

// uploadConfigMap stores data in the kube-system ConfigMap name through upload, announcing it
// first; a dry run prints what it would store instead.
func uploadConfigMap(ctx context.Context, d *Data, name string, data []byte, announce string, upload func(context.Context, kubeclient.Interface, []byte) error) error {
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would create ConfigMap kube-system/%s with:\n%s", name, data)
		return nil
	}
	fmt.Fprintln(d.log, announce)
	return d.withAdminClient(ctx, func(ctx context.Context, c kubeclient.Interface) error {
		return upload(ctx, c, data)
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
	return d.withAdminClient(ctx, func(ctx context.Context, c kubeclient.Interface) error {
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
	endpoint, token, hash, err := joinParameters(d)
	if err != nil {
		return err
	}
	if d.cfg.Cluster.ControlPlaneEndpoint != "" {
		switch {
		case d.certsUploaded && !d.skipCertificateKeyPrint:
			fmt.Fprintf(d.out, "You can now join any number of control-plane nodes by running the following on each as root:\n\n%s\n\n",
				bootstrap.ControlPlaneJoinCommand(endpoint, token, hash, d.certificateKey))
			fmt.Fprintf(d.out, "The certificate key decrypts the cluster's CA keys: keep it secret. The uploaded certificates are deleted after %s;\n"+
				"run \"kubestrap init phase upload-certs --upload-certs\" on a control-plane node to upload them again with a new key.\n\n", copycerts.TokenTTLText)
		case d.certsUploaded:
			fmt.Fprintf(d.out, "You can now join any number of control-plane nodes by running the following on each as root, with the certificate key of this upload:\n\n%s\n\n",
				bootstrap.ControlPlaneJoinCommand(endpoint, token, hash, "<certificate key>"))
		default:
			fmt.Fprintf(d.out, "To join control-plane nodes, first upload the shared certificates with \"kubestrap init phase upload-certs --upload-certs\",\n"+
				"then run the following on each as root, with the key it prints:\n\n%s\n\n",
				bootstrap.ControlPlaneJoinCommand(endpoint, token, hash, "<certificate key>"))
		}
	}
	fmt.Fprintf(d.out, "Then you can join any number of worker nodes by running the following on each as root:\n\n%s\n", bootstrap.JoinCommand(endpoint, token, hash))
	return nil
}

// joinParameters are what a join command needs: the control plane's host:port, the first
// bootstrap token and the CA's pin (a placeholder in a dry run without a CA).
func joinParameters(d *Data) (endpoint, token, hash string, err error) {
	if err := config.EnsureBootstrapToken(d.cfg); err != nil {
		return "", "", "", err
	}
	hash = "sha256:<hash of the CA that init would generate>"
	if ca, _, err := pki.LoadCA(d.p, d.cfg); err == nil {
		hash = pki.PublicKeyPin(ca)
	} else if !d.dryRun {
		return "", "", "", err
	}
	endpoint = strings.TrimPrefix(d.cfg.ControlPlaneURL(), "https://")
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		return "", "", "", fmt.Errorf("control plane endpoint %q: %w", endpoint, err)
	}
	return endpoint, d.cfg.Init.BootstrapTokens[0].Token, hash, nil
}
