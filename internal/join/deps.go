package join

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/copycerts"
	"github.com/kubestrap/kubestrap/internal/etcdcluster"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/initflow"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
	"github.com/kubestrap/kubestrap/internal/supervisor"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// initSetup is the joining node's control plane run by init's functions, plus the stop a failed
// join needs.
type initSetup struct {
	*initflow.ControlPlane
	p   paths.Paths
	log io.Writer
}

func newInitSetup(cfg *config.Config, p paths.Paths, o initflow.Options) (ControlPlaneSetup, error) {
	mode := cfg.Kubestrap.Mode
	if mode == "" || mode == config.ModeAuto {
		m, _, err := runmode.Resolve(mode, runmode.RealHost{}, p)
		if err != nil {
			return nil, err
		}
		mode = m.Name()
	}
	cp, err := initflow.NewControlPlane(cfg, p, mode, o)
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	return &initSetup{ControlPlane: cp, p: p, log: log}, nil
}

// Stop stops what the run mode started under the root, as reset's stop does for that mode.
func (s *initSetup) Stop(ctx context.Context) error {
	m := s.Mode()
	in, ok := m.Discover(s.p)
	if !ok {
		return nil
	}
	return m.Stop(ctx, in, joinStopper{p: s.p, log: s.log})
}

// joinStopper is runmode.Stopper for a failed join's own control plane.
type joinStopper struct {
	p   paths.Paths
	log io.Writer
}

func (s joinStopper) StopLocal() error {
	_, err := supervisor.Host{Log: s.log}.Stop(s.p, 0)
	return err
}

func (s joinStopper) StopUnits(ctx context.Context, units []string) {
	if ok, why := systemd.Manageable(s.p); !ok {
		fmt.Fprintf(s.log, "[reset] Not asking systemd to stop %s: %s\n", strings.Join(units, ", "), why)
		return
	}
	m, err := systemd.NewManager(ctx)
	if err == nil {
		defer m.Close()
		err = m.StopAndDisable(ctx, units)
	}
	if err != nil {
		fmt.Fprintf(s.log, "[reset] WARNING: stopping %s: %v; run: systemctl disable --now %s\n", strings.Join(units, ", "), err, strings.Join(units, " "))
	}
}

// StopStaticPods has nothing to do before the rollback: removing the manifests, which the
// rollback does next, is what makes the kubelet stop the pods.
func (s joinStopper) StopStaticPods(context.Context, runmode.Installed) error { return nil }

// NewControlPlaneDeps are the real seams of a control-plane join: copycerts for the certificate
// hand-off, init's functions for the node's control plane, etcdcluster for the member.
func NewControlPlaneDeps() ControlPlaneDeps {
	return ControlPlaneDeps{
		DownloadCerts: func(ctx context.Context, c kubeclient.Interface, certDir, encryptionConfig string, key []byte, w fsutil.Writer) error {
			return copycerts.Download(ctx, c, certDir, key, w, copycerts.EncryptionConfig(encryptionConfig))
		},
		ParseKey: copycerts.ParseKey,
		NewSetup: newInitSetup,
		DialEtcd: dialEtcd,
	}
}

// PromoteTimeout bounds the wait for this node's learner to start and catch up before it is
// promoted: etcd's own start, and the snapshot of a large cluster's data.
const PromoteTimeout = 5 * time.Minute

// joinLockKey is the etcd key of the cluster's control-plane join lock.
const joinLockKey = "/kubestrap.io/locks/control-plane-join"

// dialEtcd connects to the other members, found through the cluster (default/kubernetes'
// endpoints: the apiservers' advertise addresses, where their stacked members listen), with this
// node's apiserver-etcd-client certificate.
func dialEtcd(ctx context.Context, admin kubeclient.Interface, cfg *config.Config, p paths.Paths) (EtcdCluster, error) {
	var eps []string
	err := kubeclient.Retry(ctx, cfg.KubernetesAPICallTimeout(), kubeclient.PermanentAPIError, func(ctx context.Context) error {
		var err error
		eps, err = etcdcluster.Endpoints(ctx, admin, cfg.EtcdClientPort())
		if err == nil && len(eps) == 0 {
			err = errors.New("the cluster lists no apiserver endpoints (default/kubernetes) to find its etcd members at")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	dir := p.CertDir(cfg.Cluster.CertificatesDir)
	tlsConfig, err := etcdcluster.ClientTLS(filepath.Join(dir, "etcd", "ca.crt"), filepath.Join(dir, "apiserver-etcd-client.crt"), filepath.Join(dir, "apiserver-etcd-client.key"))
	if err != nil {
		return nil, err
	}
	c, err := etcdcluster.Dial(ctx, eps, tlsConfig)
	if err != nil {
		return nil, err
	}
	return etcdMembership{c: c, promoteTimeout: PromoteTimeout}, nil
}

// etcdMembership is EtcdCluster over etcdcluster.
type etcdMembership struct {
	c              etcdcluster.Client
	promoteTimeout time.Duration
}

func (e etcdMembership) Lock(ctx context.Context) (func(context.Context) error, error) {
	unlock, err := etcdcluster.Lock(ctx, e.c, joinLockKey)
	if err != nil {
		return nil, err
	}
	return func(context.Context) error { unlock(); return nil }, nil
}

func (e etcdMembership) AddLearner(ctx context.Context, name, peerURL string) (uint64, string, error) {
	m, initial, err := etcdcluster.AddLearner(ctx, e.c, name, peerURL)
	return m.ID, initial, err
}

func (e etcdMembership) Promote(ctx context.Context, id uint64) error {
	return etcdcluster.Promote(ctx, e.c, id, e.promoteTimeout)
}

// Remove removes a failed join's own member. It is a learner, or a voter that never served
// (promoted just before the failure): the quorum guard applies all the same.
func (e etcdMembership) Remove(ctx context.Context, id uint64) error {
	return etcdcluster.Remove(ctx, e.c, id, false)
}

func (e etcdMembership) Close() error { return e.c.Close() }
