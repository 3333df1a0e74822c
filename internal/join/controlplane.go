package join

// The control-plane side of join (join --control-plane, or a JoinConfiguration with
// controlPlane): after the same discovery as a worker, the node downloads the cluster's shared
// certificates with the certificate key, makes its own leaf certificates and kubeconfigs, adds
// itself to etcd as a learner under the cluster's join lock, starts its control plane in its run
// mode (through init's own functions, initflow.ControlPlane), promotes its member, waits for its
// components and marks itself as a control-plane node. A join that fails at any step removes its
// etcd member, stops what it started and removes every file it wrote.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/initflow"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// ControlPlaneSetup is the joining node's own control plane: init's functions
// (initflow.ControlPlane) in a real join, a fake in tests.
type ControlPlaneSetup interface {
	Preflight(ctx context.Context) error
	Certs(ctx context.Context) error
	Kubeconfigs(ctx context.Context) error
	WriteComponents(ctx context.Context) error
	KubeletStart(ctx context.Context) error
	WriteEtcd(ctx context.Context) error
	Start(ctx context.Context) error
	Wait(ctx context.Context) error
	MarkControlPlane(ctx context.Context) error
	// CSRApprover records this node's addresses for the CSR approver where a kubelet runs here,
	// and waits for this node's approver.
	CSRApprover(ctx context.Context) error
	// Stop stops what Start started, when the join fails after it.
	Stop(ctx context.Context) error
}

// EtcdCluster is the join's view of the cluster's etcd (package etcdcluster over a client to the
// other members; fakes in tests).
type EtcdCluster interface {
	// Lock takes the cluster's join lock: one control-plane join at a time.
	Lock(ctx context.Context) (unlock func(context.Context) error, err error)
	// AddLearner adds this node's member as a learner and returns its id and etcd's
	// --initial-cluster for it; it refuses while another learner exists or the cluster is
	// unhealthy.
	AddLearner(ctx context.Context, name, peerURL string) (id uint64, initialCluster string, err error)
	// Promote makes the learner a voting member once it has caught up.
	Promote(ctx context.Context, id uint64) error
	// Remove removes the member (a failed join's own).
	Remove(ctx context.Context, id uint64) error
	Close() error
}

// ControlPlaneDeps are the seams of a control-plane join; NewControlPlaneDeps gives the real
// ones.
type ControlPlaneDeps struct {
	// DownloadCerts decrypts the kube-system/kubeadm-certs Secret with key and writes the shared
	// certificates and keys under certDir, and kube-apiserver's encryption configuration to
	// encryptionConfig, through w; a wrong key fails before anything is written.
	DownloadCerts func(ctx context.Context, c kubeclient.Interface, certDir, encryptionConfig string, key []byte, w fsutil.Writer) error
	// ParseKey checks and decodes the certificate key.
	ParseKey func(string) ([]byte, error)
	// NewSetup builds the node's control plane for cfg.
	NewSetup func(cfg *config.Config, p paths.Paths, o initflow.Options) (ControlPlaneSetup, error)
	// DialEtcd connects to the cluster's etcd members (found through the cluster, with admin)
	// with this node's etcd client certificate.
	DialEtcd func(ctx context.Context, admin kubeclient.Interface, cfg *config.Config, p paths.Paths) (EtcdCluster, error)
}

// controlPlane is the state of a control-plane join.
type controlPlane struct {
	cfg   *config.Config
	setup ControlPlaneSetup
	admin kubeclient.Interface
	etcd  EtcdCluster

	unlock func(context.Context) error
	// member is this node's etcd member once added (0: none).
	member uint64
	// started is set once Start ran: a failed join stops the node's control plane.
	started bool
}

// IsControlPlane reports whether this is a control-plane join.
func (j *Join) IsControlPlane() bool { return j.o.Config.Join.ControlPlane != nil }

// controlPlaneConfig reads the cluster's ClusterConfiguration with the bootstrap token (init's
// upload-config lets bootstrap tokens read it), builds this node's configuration from it and
// prepares the node's control plane. It writes nothing.
func (j *Join) controlPlaneConfig(ctx context.Context) error {
	if j.cp != nil {
		return nil
	}
	if err := j.Discover(ctx); err != nil {
		return err
	}
	if j.discovered == nil {
		return errors.New("a dry run of a control-plane join needs the cluster: discovery did not succeed")
	}
	j.logf("[control-plane-prepare] Reading the cluster's configuration from ConfigMap kube-system/%s", bootstrap.KubeadmConfigConfigMap)
	cm, err := j.systemConfigMap(ctx, bootstrap.KubeadmConfigConfigMap)
	if err != nil {
		return fmt.Errorf("reading ConfigMap kube-system/%s with the bootstrap token: %w (init uploads it in its upload-config phase)", bootstrap.KubeadmConfigConfigMap, err)
	}
	doc, ok := cm.Data[bootstrap.ClusterConfigKey]
	if !ok {
		return fmt.Errorf("ConfigMap kube-system/%s has no %q key", bootstrap.KubeadmConfigConfigMap, bootstrap.ClusterConfigKey)
	}
	cfg, err := config.ControlPlaneConfig(j.o.Config, []byte(doc), j.o.Host)
	if err != nil {
		return err
	}
	if !cfg.LocalEtcd() {
		return errors.New("the cluster uses an external etcd: kubestrap joins control-plane nodes with stacked etcd only")
	}
	setup, err := j.deps().NewSetup(cfg, j.o.Paths, initflow.Options{DryRun: j.o.DryRun, IgnorePreflight: j.ignored(), Log: j.log, Out: j.log, Files: j.files})
	if err != nil {
		return err
	}
	j.cp = &controlPlane{cfg: cfg, setup: setup}
	if j.o.DryRun {
		return nil
	}
	// What the control plane's processes write themselves (etcd's data, logs and audit logs, pid
	// files, the component program's store) goes too if the join fails: recorded before this
	// join writes anything there, so that whatever appears in them is removed.
	p := j.o.Paths
	var etcdDir string
	if l := cfg.Cluster.Etcd.Local; l != nil {
		etcdDir = l.DataDir
	}
	for _, dir := range []string{p.EtcdDataDir(etcdDir), p.StateDir(), p.LogDir(), p.RunDir()} {
		if err := j.files.Watch(dir); err != nil {
			return err
		}
	}
	return nil
}

func (j *Join) deps() ControlPlaneDeps {
	if j.o.ControlPlane != nil {
		return *j.o.ControlPlane
	}
	return NewControlPlaneDeps()
}

// ControlPlanePreflight runs init's checks for this node's control plane (address, ports, etcd
// data dir) once the cluster's configuration is known.
func (j *Join) ControlPlanePreflight(ctx context.Context) error {
	return j.controlPlaneStep(ctx, ControlPlaneSetup.Preflight)
}

// DownloadCerts writes the cluster's shared certificates and keys (CAs, service-account key)
// from the kube-system/kubeadm-certs Secret, decrypted with the certificate key.
func (j *Join) DownloadCerts(ctx context.Context) (err error) {
	defer j.undoOnError(&err)
	if err := j.controlPlaneConfig(ctx); err != nil {
		return err
	}
	d := j.deps()
	key, err := d.ParseKey(j.o.Config.Join.ControlPlane.CertificateKey)
	if err != nil {
		return fmt.Errorf("--certificate-key: %w", err)
	}
	certDir := j.o.Paths.CertDir(j.cp.cfg.Cluster.CertificatesDir)
	if j.o.DryRun {
		j.logf("[dryrun] Would download the shared certificates from Secret kube-system/kubeadm-certs into %s", certDir)
		return nil
	}
	c, err := j.bootstrapClient()
	if err != nil {
		return err
	}
	j.logf("[download-certs] Downloading the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace")
	enc := initflow.EncryptionConfigFile(j.cp.cfg, j.o.Paths)
	if err := d.DownloadCerts(ctx, c, certDir, enc, key, j.files); err != nil {
		return err
	}
	// Secrets are encrypted at rest with the keys in this file: an apiserver with keys of its
	// own could not read what the others wrote, nor they what it writes.
	if _, err := os.Stat(enc); enc != "" && err != nil {
		return fmt.Errorf("Secret kube-system/kubeadm-certs holds no kube-apiserver encryption configuration (%s), which every apiserver of the cluster must share: it was uploaded by kubeadm or an older kubestrap; run `kubestrap init phase upload-certs --upload-certs` on a control-plane node and join with the key it prints", enc)
	}
	return nil
}

// ControlPlaneCerts makes this node's own certificates (its SANs: advertise address, node name,
// the cluster's endpoint) from the downloaded CAs.
func (j *Join) ControlPlaneCerts(ctx context.Context) error {
	return j.controlPlaneStep(ctx, ControlPlaneSetup.Certs)
}

// ControlPlaneKubeconfigs makes this node's kubeconfig files, signed by the downloaded CA.
func (j *Join) ControlPlaneKubeconfigs(ctx context.Context) error {
	return j.controlPlaneStep(ctx, ControlPlaneSetup.Kubeconfigs)
}

// ControlPlaneFiles writes the run mode's files of kube-apiserver, kube-controller-manager,
// kube-scheduler and the CSR approver.
func (j *Join) ControlPlaneFiles(ctx context.Context) error {
	return j.controlPlaneStep(ctx, ControlPlaneSetup.WriteComponents)
}

// ControlPlaneKubeletStart is init's kubelet-start on the joining node: static-pod mode's kubelet
// runs its control plane; the other modes have none.
func (j *Join) ControlPlaneKubeletStart(ctx context.Context) error {
	return j.controlPlaneStep(ctx, ControlPlaneSetup.KubeletStart)
}

// controlPlaneStep runs one of init's steps for this node's control plane, with the node's
// configuration read from the cluster first, and rolls the join back when it fails.
func (j *Join) controlPlaneStep(ctx context.Context, step func(ControlPlaneSetup, context.Context) error) (err error) {
	defer j.undoOnError(&err)
	if err := j.controlPlaneConfig(ctx); err != nil {
		return err
	}
	return step(j.cp.setup, ctx)
}

// adminClient is a cluster-admin client through the cluster's endpoint, with the admin.conf the
// kubeconfig phase made (signed by the downloaded CA).
func (j *Join) adminClient() (kubeclient.Interface, error) {
	if j.cp.admin != nil {
		return j.cp.admin, nil
	}
	path := j.o.Paths.Kubeconfig("admin.conf")
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading %s (made by the kubeconfig phase): %w", path, err)
	}
	c, err := j.newClient(kc)
	if err != nil {
		return nil, err
	}
	j.cp.admin = c
	return c, nil
}

// EtcdJoin adds this node to etcd and starts its control plane: under the cluster's join lock it
// adds its member as a learner (refused while another learner exists or the cluster is
// unhealthy), writes the member's files with the cluster it joins, starts the control plane in
// the run mode, and promotes the learner once it has caught up.
func (j *Join) EtcdJoin(ctx context.Context) (err error) {
	defer j.undoOnError(&err)
	if err := j.controlPlaneConfig(ctx); err != nil {
		return err
	}
	cp := j.cp
	cfg := cp.cfg
	name := cfg.NodeName()
	peerURL := "https://" + net.JoinHostPort(cfg.AdvertiseAddress(), strconv.Itoa(int(cfg.EtcdPeerPort())))
	if j.o.DryRun {
		j.logf("[dryrun] Would add etcd member %s (%s) as a learner, start this node's control plane with --initial-cluster-state=existing, and promote the member", name, peerURL)
		cfg.EtcdInitialCluster = name + "=" + peerURL + ",<the cluster's members>"
		if err := cp.setup.WriteEtcd(ctx); err != nil {
			return err
		}
		return cp.setup.Start(ctx)
	}
	admin, err := j.adminClient()
	if err != nil {
		return err
	}
	if cp.etcd == nil {
		cp.etcd, err = j.deps().DialEtcd(ctx, admin, cfg, j.o.Paths)
		if err != nil {
			return fmt.Errorf("connecting to the cluster's etcd: %w", err)
		}
	}
	j.logf("[etcd-join] Waiting for the cluster's join lock (one control-plane join at a time)")
	cp.unlock, err = cp.etcd.Lock(ctx)
	if err != nil {
		return fmt.Errorf("taking the cluster's join lock: %w", err)
	}
	j.logf("[etcd-join] Adding etcd member %s (%s) as a learner", name, peerURL)
	id, initialCluster, err := cp.etcd.AddLearner(ctx, name, peerURL)
	if err != nil {
		return fmt.Errorf("adding etcd member %s: %w", name, err)
	}
	cp.member = id
	cfg.EtcdInitialCluster = initialCluster
	if err := cp.setup.WriteEtcd(ctx); err != nil {
		return err
	}
	cp.started = true
	if err := cp.setup.Start(ctx); err != nil {
		return err
	}
	start := time.Now()
	j.logf("[etcd-join] Waiting for the learner to catch up, then promoting it to a voting member")
	if err := cp.etcd.Promote(ctx, id); err != nil {
		return fmt.Errorf("promoting etcd member %s: %w", name, err)
	}
	j.logf("[etcd-join] etcd member %s is a voting member (%s after the start)", name, time.Since(start).Round(time.Millisecond))
	return j.releaseLock()
}

func (j *Join) releaseLock() error {
	cp := j.cp
	if cp == nil || cp.unlock == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cp.unlock(ctx)
	cp.unlock = nil
	if err != nil {
		return fmt.Errorf("releasing the cluster's join lock: %w", err)
	}
	return nil
}

// WaitControlPlane waits until this node's components are healthy.
func (j *Join) WaitControlPlane(ctx context.Context) error {
	return j.controlPlaneStep(ctx, ControlPlaneSetup.Wait)
}

// MarkControlPlane labels and taints this node's Node, where its run mode registers one.
func (j *Join) MarkControlPlane(ctx context.Context) error {
	return j.controlPlaneStep(ctx, ControlPlaneSetup.MarkControlPlane)
}

// CSRApprover is init's csr-approver phase on this node: where its run mode runs a kubelet
// (static-pod mode), the node's addresses are recorded for kubestrap's CSR approver, as init
// records the first node's, so that its kubelet's serving certificate is approved; then it waits
// for this node's approver to be ready. Its failure is a warning, not a failed join: the node's
// control plane is joined and serving by now, and undoing that (its etcd member removed) for an
// add-on would cost the cluster more than it saves.
func (j *Join) CSRApprover(ctx context.Context) error {
	return j.controlPlaneStep(ctx, func(s ControlPlaneSetup, ctx context.Context) error {
		if err := s.CSRApprover(ctx); err != nil {
			j.logf("[csr-approver] WARNING: %v; this node's control plane is joined all the same. Kubelet serving certificates of this node may stay pending: run 'kubestrap join phase control-plane-join/csr-approver' again once the approver is ready, or approve them with 'kubectl certificate approve'", err)
		}
		return nil
	})
}

// undoControlPlane is the control-plane part of a failed join's rollback, before the files go:
// the etcd member is removed through the other members (so the cluster does not count a member
// that will never run), then what was started is stopped, and the join lock released.
func (j *Join) undoControlPlane() []error {
	cp := j.cp
	if cp == nil {
		return nil
	}
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if cp.member != 0 {
		if err := cp.etcd.Remove(ctx, cp.member); err != nil {
			errs = append(errs, fmt.Errorf("removing this join's etcd member %x: %w (remove it with etcdctl member remove)", cp.member, err))
		} else {
			j.logf("[reset] Removed this join's etcd member %s", cp.cfg.NodeName())
			cp.member = 0
		}
	}
	if cp.started {
		if err := cp.setup.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping this node's control plane: %w", err))
		} else {
			cp.started = false
		}
	}
	if err := j.releaseLock(); err != nil {
		errs = append(errs, err)
	}
	if cp.etcd != nil {
		cp.etcd.Close()
		cp.etcd = nil
	}
	return errs
}
