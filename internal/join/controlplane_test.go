package join

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/etcdcluster"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/initflow"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/paths"
)

const testCertKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// cpTest is a control-plane join against fakes: the cluster (its ClusterConfiguration), the
// certificate download, the node's control plane and etcd (etcdcluster's own logic over a fake
// etcd client, so a second learner is refused by the real rule). Every fake records its calls in
// one list, so the order of the steps is checked across them.
type cpTest struct {
	t     *testing.T
	root  string
	calls []string
	// failAt names the step that fails ("promote", "wait", ...).
	failAt string
	etcd   *fakeEtcd
	setup  *fakeSetup
	// noEncryptionConfig: the uploaded Secret has no encryption configuration (kubeadm's upload).
	noEncryptionConfig bool
}

func (c *cpTest) record(call string) error {
	c.calls = append(c.calls, call)
	if call == c.failAt {
		return fmt.Errorf("injected failure at %s", call)
	}
	return nil
}

// newCPTest makes a control-plane join of node cp2 (10.0.0.12) into a cluster whose
// ClusterConfiguration is clusterDoc, with one healthy voting member cp1.
func newCPTest(t *testing.T, clusterDoc string) (*cpTest, *Join) {
	t.Helper()
	c := &cpTest{t: t, root: t.TempDir()}
	c.etcd = &fakeEtcd{members: []etcdcluster.Member{{ID: 1, Name: "cp1", PeerURLs: []string{"https://10.0.0.11:2380"}, ClientURLs: []string{"https://10.0.0.11:2379"}}}, nextID: 100}
	cluster := newTestCluster(t)
	cm, err := cluster.client.CoreV1().ConfigMaps("kube-system").Get(context.Background(), bootstrap.KubeadmConfigConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{bootstrap.ClusterConfigKey: clusterDoc}
	if _, err := cluster.client.CoreV1().ConfigMaps("kube-system").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	j := newTestJoin(t, c.root, cluster, func(o *Options) {
		cfg, err := config.LoadJoinWith("", config.JoinOverrides{
			APIServerEndpoint: "10.0.0.1:6443", Token: testToken,
			CACertHashes: []string{"sha256:" + strings.Repeat("ab", 32)}, NodeName: "cp2",
			ControlPlane: true, CertificateKey: testCertKey, AdvertiseAddress: "10.0.0.12", Mode: config.ModeLocal,
		}, config.SystemHost{})
		if err != nil {
			t.Fatal(err)
		}
		o.Config = cfg
		o.ControlPlane = &ControlPlaneDeps{
			ParseKey: func(s string) ([]byte, error) {
				if s != testCertKey {
					return nil, errors.New("bad key")
				}
				return []byte(s), nil
			},
			DownloadCerts: func(ctx context.Context, _ kubeclient.Interface, certDir, encryptionConfig string, key []byte, w fsutil.Writer) error {
				if err := c.record("download-certs"); err != nil {
					return err
				}
				if err := w.WriteFile(filepath.Join(certDir, "ca.key"), []byte("shared CA key"), 0o600); err != nil {
					return err
				}
				if c.noEncryptionConfig {
					return nil
				}
				return w.WriteFile(encryptionConfig, []byte("the cluster's encryption keys"), 0o600)
			},
			NewSetup: func(cfg *config.Config, p paths.Paths, o initflow.Options) (ControlPlaneSetup, error) {
				c.setup = &fakeSetup{c: c, cfg: cfg, p: p, files: o.Files}
				return c.setup, nil
			},
			DialEtcd: func(ctx context.Context, admin kubeclient.Interface, cfg *config.Config, p paths.Paths) (EtcdCluster, error) {
				if err := c.record("dial-etcd"); err != nil {
					return nil, err
				}
				// etcdcluster.Promote retries a failed promote until this passes.
				return etcdMembership{c: c.etcd, promoteTimeout: 2 * time.Second}, nil
			},
		}
	})
	return c, j
}

// runCP runs a whole control-plane join with the real runner, as the CLI does.
func runCP(j *Join) error {
	return RunAll(context.Background(), NewRunner(), j, nil)
}

// fakeSetup is the node's control plane: each step is recorded and writes a file through the
// join's writer (Start writes one behind its back, as the supervisor's pid files are).
type fakeSetup struct {
	c       *cpTest
	cfg     *config.Config
	p       paths.Paths
	files   fsutil.Writer
	etcdCfg string
}

func (s *fakeSetup) step(name, file string) error {
	if err := s.c.record(name); err != nil {
		return err
	}
	if file == "" {
		return nil
	}
	return s.files.WriteFile(filepath.Join(s.p.Root(), file), []byte(name), 0o600)
}

func (s *fakeSetup) Preflight(context.Context) error { return s.step("cp-preflight", "") }
func (s *fakeSetup) Certs(context.Context) error {
	return s.step("certs", "etc/kubernetes/pki/apiserver.crt")
}
func (s *fakeSetup) Kubeconfigs(context.Context) error {
	if err := s.step("kubeconfig", ""); err != nil {
		return err
	}
	data, err := clientcmd.Write(*kubeconfig.TokenConfig("https://10.0.0.1:6443", []byte("CA"), "kubernetes", "kubernetes-admin", "token"))
	if err != nil {
		return err
	}
	return s.files.WriteFile(s.p.Kubeconfig("admin.conf"), data, 0o600)
}
func (s *fakeSetup) WriteComponents(context.Context) error {
	if err := s.step("control-plane", ""); err != nil {
		return err
	}
	// As init's control-plane phase makes the audit log's directory, which kube-apiserver fills.
	return s.files.Mkdir(s.p.AuditLogDir(), 0o700)
}
func (s *fakeSetup) KubeletStart(context.Context) error { return s.step("kubelet-start", "") }
func (s *fakeSetup) WriteEtcd(context.Context) error {
	s.etcdCfg = s.cfg.EtcdInitialCluster
	if err := s.step("write-etcd", ""); err != nil {
		return err
	}
	return s.files.Mkdir(s.p.EtcdDataDir(""), 0o700)
}
func (s *fakeSetup) Start(context.Context) error {
	if err := s.c.record("start"); err != nil {
		return err
	}
	if s.files.DryRun() {
		return nil // init's Start only says what it would start
	}
	// What the started processes write themselves: etcd's data, a pid file.
	if err := os.MkdirAll(filepath.Join(s.p.EtcdDataDir(""), "member"), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(s.p.RunDir(), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(s.p.PidFile("etcd"), []byte("1"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(s.p.AuditLog(), []byte("{}"), 0o600); err != nil {
		return err
	}
	s.c.etcd.started("cp2", "https://10.0.0.12:2379")
	return nil
}
func (s *fakeSetup) Wait(context.Context) error             { return s.step("wait", "") }
func (s *fakeSetup) MarkControlPlane(context.Context) error { return s.step("mark-control-plane", "") }
func (s *fakeSetup) CSRApprover(context.Context) error      { return s.step("csr-approver", "") }
func (s *fakeSetup) Stop(context.Context) error             { return s.step("stop", "") }

// fakeEtcd is an etcd cluster behind etcdcluster.Client: every voter healthy, members as added.
type fakeEtcd struct {
	c       *cpTest
	mu      sync.Mutex
	members []etcdcluster.Member
	nextID  uint64
}

func (e *fakeEtcd) call(name string) error {
	if e.c == nil {
		return nil
	}
	return e.c.record(name)
}

// started is the learner's etcd starting: it gets its name and client URL.
func (e *fakeEtcd) started(name, clientURL string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.members {
		if e.members[i].IsLearner && e.members[i].Name == "" {
			e.members[i].Name, e.members[i].ClientURLs = name, []string{clientURL}
		}
	}
}

func (e *fakeEtcd) MemberList(context.Context) ([]etcdcluster.Member, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.members), nil
}

func (e *fakeEtcd) MemberAddAsLearner(_ context.Context, peerURL string) (etcdcluster.Member, error) {
	if err := e.call("add-learner"); err != nil {
		return etcdcluster.Member{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nextID++
	m := etcdcluster.Member{ID: e.nextID, PeerURLs: []string{peerURL}, IsLearner: true}
	e.members = append(e.members, m)
	return m, nil
}

func (e *fakeEtcd) MemberPromote(_ context.Context, id uint64) error {
	if err := e.call("promote"); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.members {
		if e.members[i].ID == id {
			e.members[i].IsLearner = false
		}
	}
	return nil
}

func (e *fakeEtcd) MemberRemove(_ context.Context, id uint64) error {
	if err := e.call(fmt.Sprintf("remove %d", id)); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.members = slices.DeleteFunc(e.members, func(m etcdcluster.Member) bool { return m.ID == id })
	return nil
}

func (e *fakeEtcd) Status(_ context.Context, endpoint string) (etcdcluster.Status, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.members {
		if slices.Contains(m.ClientURLs, endpoint) {
			return etcdcluster.Status{MemberID: m.ID, Leader: 1}, nil
		}
	}
	return etcdcluster.Status{}, fmt.Errorf("%s does not answer", endpoint)
}

func (e *fakeEtcd) Lock(context.Context, string, time.Duration) (func(), error) {
	if err := e.call("lock"); err != nil {
		return nil, err
	}
	return func() { e.call("unlock") }, nil
}

func (e *fakeEtcd) Close() error { return nil }

const clusterWithEndpoint = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: 10.0.0.1:6443\n"

func TestControlPlaneJoinPhaseOrder(t *testing.T) {
	t.Parallel()
	c, j := newCPTest(t, clusterWithEndpoint)
	c.etcd.c = c
	if err := runCP(j); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cp-preflight", "download-certs", "certs", "kubeconfig", "control-plane", "kubelet-start",
		"dial-etcd", "lock", "add-learner", "write-etcd", "start", "promote", "unlock",
		"wait", "mark-control-plane", "csr-approver",
	}
	if !slices.Equal(c.calls, want) {
		t.Errorf("steps\n %v\nwant\n %v", c.calls, want)
	}
	// The member starts from the cluster it joins, itself included.
	if want := "cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380"; c.setup.etcdCfg != want {
		t.Errorf("etcd's initial cluster %q, want %q", c.setup.etcdCfg, want)
	}
	// The node's configuration is the cluster's with this node's part.
	cfg := c.setup.cfg
	if cfg.Cluster.ControlPlaneEndpoint != "10.0.0.1:6443" || cfg.AdvertiseAddress() != "10.0.0.12" || cfg.NodeName() != "cp2" || cfg.Kubestrap.Mode != config.ModeLocal {
		t.Errorf("node configuration: endpoint %q, address %q, name %q, mode %q", cfg.Cluster.ControlPlaneEndpoint, cfg.AdvertiseAddress(), cfg.NodeName(), cfg.Kubestrap.Mode)
	}
	m, _ := c.etcd.MemberList(context.Background())
	if len(m) != 2 || m[1].IsLearner || m[1].Name != "cp2" {
		t.Errorf("members after the join: %+v, want cp2 a voting member", m)
	}
	var out strings.Builder
	j.Summary(&out)
	if !strings.Contains(out.String(), `joined the cluster as control-plane node "cp2"`) {
		t.Errorf("summary:\n%s", out.String())
	}
}

// A join that fails after its member was added removes the member, stops what it started,
// releases the lock and leaves the root as it was (files it wrote, and what the started
// processes wrote).
func TestControlPlaneJoinFailureRollsBack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failAt string
		// undo are the steps of the rollback, after the failure.
		undo []string
	}{
		{"promote", []string{"remove 101", "stop", "unlock"}},
		{"wait", []string{"remove 101", "stop"}},
		{"mark-control-plane", []string{"remove 101", "stop"}},
		{"start", []string{"remove 101", "stop", "unlock"}},
		{"add-learner", []string{"unlock"}},
		{"certs", nil},
		{"download-certs", nil},
	} {
		t.Run(tc.failAt, func(t *testing.T) {
			t.Parallel()
			c, j := newCPTest(t, clusterWithEndpoint)
			c.etcd.c = c
			c.failAt = tc.failAt
			err := runCP(j)
			if err == nil || !strings.Contains(err.Error(), "injected failure at "+tc.failAt) {
				t.Fatalf("err %v, want the injected failure", err)
			}
			i := slices.Index(c.calls, tc.failAt)
			// promote is retried by etcdcluster.Promote until its timeout: the rollback starts
			// after the last attempt.
			for i+1 < len(c.calls) && c.calls[i+1] == tc.failAt {
				i++
			}
			if got := c.calls[i+1:]; !slices.Equal(got, tc.undo) {
				t.Errorf("after the failure: %v, want %v", got, tc.undo)
			}
			if left := tree(t, c.root); len(left) > 0 {
				t.Errorf("the failed join left %v", left)
			}
			m, _ := c.etcd.MemberList(context.Background())
			if len(m) != 1 {
				t.Errorf("members after the failed join: %+v, want cp1 alone", m)
			}
		})
	}
}

// A failing csr-approver step (an approver that does not become ready) is a warning: the node's
// control plane is joined and serving, and its etcd member stays.
func TestControlPlaneJoinApproverFailureKeepsTheNode(t *testing.T) {
	t.Parallel()
	c, j := newCPTest(t, clusterWithEndpoint)
	c.etcd.c = c
	c.failAt = "csr-approver"
	if err := runCP(j); err != nil {
		t.Fatalf("the join failed for its CSR approver: %v", err)
	}
	if n := len(c.calls); c.calls[n-1] != "csr-approver" || slices.Contains(c.calls, "stop") {
		t.Errorf("steps %v: nothing may be undone after the approver's failure", c.calls)
	}
	if m, _ := c.etcd.MemberList(context.Background()); len(m) != 2 {
		t.Errorf("members %+v, want cp2 kept", m)
	}
	if log := j.log.(*strings.Builder).String(); !strings.Contains(log, "[csr-approver] WARNING: injected failure at csr-approver; this node's control plane is joined all the same") {
		t.Errorf("no warning:\n%s", log)
	}
}

// A second control-plane join while another's learner exists is refused by etcdcluster's rule,
// and leaves nothing behind; the lock is released.
func TestControlPlaneJoinRefusedWhileLearnerExists(t *testing.T) {
	t.Parallel()
	c, j := newCPTest(t, clusterWithEndpoint)
	c.etcd.members = append(c.etcd.members, etcdcluster.Member{ID: 50, PeerURLs: []string{"https://10.0.0.13:2380"}, IsLearner: true})
	c.etcd.c = c
	err := runCP(j)
	if err == nil || !strings.Contains(err.Error(), "is a learner: another control-plane join is in progress") {
		t.Fatalf("err %v, want the refusal naming the other learner", err)
	}
	if slices.Contains(c.calls, "add-learner") || slices.Contains(c.calls, "start") {
		t.Errorf("steps %v: nothing may be added or started", c.calls)
	}
	if c.calls[len(c.calls)-1] != "unlock" {
		t.Errorf("steps %v: the lock must be released", c.calls)
	}
	if left := tree(t, c.root); len(left) > 0 {
		t.Errorf("the refused join left %v", left)
	}
}

// The refusals before anything is written: no controlPlaneEndpoint, external etcd, a key that
// does not parse.
func TestControlPlaneJoinRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, clusterDoc, key, want string
	}{
		{"no endpoint", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n", "", config.NoControlPlaneEndpoint},
		{"external etcd", clusterWithEndpoint + "etcd:\n  external:\n    endpoints: [https://10.0.0.50:2379]\n    caFile: /e/ca.crt\n    certFile: /e/c.crt\n    keyFile: /e/c.key\n", "", "external etcd"},
		{"bad key", clusterWithEndpoint, strings.Repeat("ff", 32), "--certificate-key: bad key"},
		{"no encryption configuration uploaded", clusterWithEndpoint, "", "holds no kube-apiserver encryption configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, j := newCPTest(t, tc.clusterDoc)
			c.etcd.c = c
			c.noEncryptionConfig = strings.HasPrefix(tc.name, "no encryption")
			if tc.key != "" {
				j.o.Config.Join.ControlPlane.CertificateKey = tc.key
			}
			err := runCP(j)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if (slices.Contains(c.calls, "download-certs") && !c.noEncryptionConfig) || slices.Contains(c.calls, "lock") {
				t.Errorf("steps %v: refused before any download or etcd change", c.calls)
			}
			if left := tree(t, c.root); len(left) > 0 {
				t.Errorf("the refused join left %v", left)
			}
		})
	}
}

// The worker's phases do not run for a control-plane node, and the control-plane phases not for
// a worker.
func TestRunnerPhaseKinds(t *testing.T) {
	t.Parallel()
	c, j := newCPTest(t, clusterWithEndpoint)
	c.etcd.c = c
	if err := runCP(j); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(j.o.Paths.Kubeconfig(BootstrapKubeletConf)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a control-plane join wrote the worker's bootstrap-kubelet.conf: %v", err)
	}
	leases, _ := j.client.CoordinationV1().Leases("kube-node-lease").List(context.Background(), metav1.ListOptions{})
	if j.client != nil && len(leases.Items) > 0 {
		t.Errorf("a control-plane join ran join-addresses: %v", leases.Items)
	}
}

// A dry run of a control-plane join writes nothing and changes nothing in etcd: no download, no
// lock, no member; init's functions run with the dry-run writer.
func TestControlPlaneJoinDryRun(t *testing.T) {
	t.Parallel()
	c, j := newCPTest(t, clusterWithEndpoint)
	c.etcd.c = c
	j.o.DryRun = true
	j.files = fsutil.NewRecorder(fsutil.For(true, j.log))
	if err := runCP(j); err != nil {
		t.Fatal(err)
	}
	want := []string{"cp-preflight", "certs", "kubeconfig", "control-plane", "kubelet-start", "write-etcd", "start", "wait", "mark-control-plane", "csr-approver"}
	if !slices.Equal(c.calls, want) {
		t.Errorf("steps %v, want %v", c.calls, want)
	}
	if left := tree(t, c.root); len(left) > 0 {
		t.Errorf("the dry run wrote %v", left)
	}
	if m, _ := c.etcd.MemberList(context.Background()); len(m) != 1 {
		t.Errorf("members after the dry run: %+v", m)
	}
}
