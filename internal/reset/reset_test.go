package reset

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/etcdcluster"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/staticpod"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// writeModeFiles writes the units or manifests of cfg's control plane, as init would in that mode.
func writeModeFiles(t *testing.T, e *env, cfg *config.Config, mode string) {
	t.Helper()
	for _, c := range components.ControlPlane(cfg, e.p) {
		var path string
		var data []byte
		var err error
		switch mode {
		case "systemd":
			path = e.p.SystemdUnit(c.Name + ".service")
			data, err = systemd.Render(cfg, e.p, c)
		default:
			path = e.p.Manifest(c.Name)
			pod, perr := staticpod.Pod(cfg, e.p, c)
			if perr != nil {
				t.Fatal(perr)
			}
			data, err = staticpod.Marshal(pod)
		}
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(e.root, path)
		e.write(rel, string(data))
	}
}

func TestProcessFinder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := e.root + "2" // a sibling root whose name starts like ours
	e.runningLocal()
	e.procs.add(10, 1, "/usr/local/bin/kubestrap", "init", "--root-dir", e.root, "--config", "/tmp/x.yaml")
	e.procs.add(11, 1, "/opt/kubelet", "--kubeconfig="+e.path("etc/kubernetes/kubelet.conf"))
	e.procs.add(12, 1, "kube-apiserver", "--client-ca-file="+e.path("etc/kubernetes/pki/ca.crt"))
	// The CSR approver left behind by a killed supervisor, under its own name.
	e.procs.add(13, 1, "kubestrap-csr-approver", "--kubeconfig="+e.path("etc/kubernetes/csr-approver.conf"))
	// Not the root's: an editor and a tail on its files, a status query, another root's
	// components, a component of ours in a container's mount namespace.
	e.procs.add(20, 1, "vim", e.path("etc/kubernetes/admin.conf"))
	e.procs.add(21, 1, "tail", "-f", e.path("var/log/kubestrap/etcd.log"))
	e.procs.add(22, 1, "/usr/local/bin/kubestrap", "status", "--root-dir", e.root)
	e.procs.add(23, 1, filepath.Join(other, "var/lib/kubestrap/bin/etcd"), "--data-dir="+other+"/var/lib/etcd")
	e.procs.add(24, 1, "/usr/local/bin/kubestrap", "supervise", "--root-dir", other)
	e.procs.add(25, 1, "etcd", "--data-dir="+other+"/var/lib/etcd")
	e.procs.add(26, 1, "kube-apiserver", "--client-ca-file="+e.path("etc/kubernetes/pki/ca.crt")).ns = "mnt:[2]"

	found, err := newProcessFinder(e.p, e.procs, selfPID).find()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range found {
		pids = append(pids, p.PID)
	}
	if want := []int{10, 11, 12, 13, 4242, 4243, 4244, 4245, 4246, 4247}; !slices.Equal(pids, want) {
		t.Errorf("found %v, want %v", found, want)
	}

	// With the real root only the supervisor and what runs through the bin dir count: every
	// path is under "/", and another installation's etcd is not ours.
	real := &processFinder{p: paths.MustUnder("/"), procs: e.procs}
	if got := real.why([]string{"etcd", "--data-dir=/var/lib/etcd"}); got != "" {
		t.Errorf("real root: a stray etcd matched (%s)", got)
	}
	if real.why([]string{"/var/lib/kubestrap/bin/etcd"}) == "" || real.why([]string{"kubestrap", "supervise", "--root-dir", "/"}) == "" {
		t.Errorf("real root: kubestrap's own processes not matched")
	}
}

func TestStopKillsStragglers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.populateInit()
	e.runningLocal()
	e.procs.m[4244].stubborn = true // an apiserver that ignores SIGTERM
	e.procs.add(50, 1, "/usr/local/bin/kubestrap", "init", "--root-dir", e.root)
	r := e.newReset(Options{Force: true})
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v\n%s", err, e.log.String())
	}
	if left := e.procs.alivePids(); !slices.Equal(left, []int{shellPID, selfPID}) {
		t.Errorf("alive after stop: %v", left)
	}
	if e.localStops != 1 {
		t.Errorf("the local supervisor was asked to stop %d times", e.localStops)
	}
	if !slices.Contains(e.procs.signals, "4244:killed") || !slices.Contains(e.procs.signals, "50:terminated") {
		t.Errorf("signals %v: want SIGKILL for the stubborn apiserver, SIGTERM for init", e.procs.signals)
	}
	if !strings.Contains(e.log.String(), "Killing process 4244") {
		t.Errorf("no kill reported:\n%s", e.log.String())
	}
}

// runningStaticPodNode sets up a static-pod node whose kubelet (a systemd unit kubestrap can
// drive) runs the control plane's pods, and returns what Discover finds.
func runningStaticPodNode(t *testing.T, e *env) *Layout {
	t.Helper()
	writeModeFiles(t, e, testConfig(), "static-pod")
	unit, dropIn, _ := systemd.KubeletUnits(e.p, "/usr/bin/kubelet")
	e.write("etc/systemd/system/kubelet.service", string(unit))
	e.write("etc/systemd/system/kubelet.service.d/10-kubeadm.conf", string(dropIn))
	l := Discover(e.p, "", "")
	// The pods' processes run in their containers' namespaces with the manifests' command lines.
	pid := 300
	for _, argv := range l.contained() {
		e.procs.add(pid, 1, argv...).ns = "mnt:[9]"
		pid++
	}
	e.procs.add(299, 1, "/usr/bin/kubelet", "--config="+e.p.KubeletConfig())
	e.sys.Manageable = func(paths.Paths) (bool, string) { return true, "" }
	return l
}

func TestStopStaticPods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := runningStaticPodNode(t, e)
	r := e.newReset(Options{Force: true})
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v\n%s", err, e.log.String())
	}
	for name := range l.contained() {
		if _, err := os.Stat(e.p.Manifest(name)); !os.IsNotExist(err) {
			t.Errorf("manifest %s not removed: %v", name, err)
		}
	}
	if left := e.procs.alivePids(); !slices.Equal(left, []int{shellPID, selfPID}) {
		t.Errorf("alive after stop: %v", left)
	}
	if !slices.Equal(e.sd.calls, []string{"stop-disable kubelet.service"}) {
		t.Errorf("systemd calls %v", e.sd.calls)
	}
}

func TestPreflightConfirmation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		tty      bool
		input    string
		force    bool
		dry      bool
		wantErr  string
		wantAsk  bool
		wantStop bool
	}{
		{name: "no terminal", wantErr: "pass --force"},
		{name: "forced", force: true},
		{name: "dry run", dry: true},
		{name: "yes", tty: true, input: "y\n", wantAsk: true},
		{name: "YES", tty: true, input: "YES\n", wantAsk: true},
		{name: "no", tty: true, input: "n\n", wantAsk: true, wantErr: "aborted"},
		{name: "empty", tty: true, input: "\n", wantAsk: true, wantErr: "aborted"},
		{name: "eof", tty: true, input: "", wantAsk: true, wantErr: "aborted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.sys.IsTerminal = func(io.Reader) bool { return tc.tty }
			r := e.newReset(Options{Force: tc.force, DryRun: tc.dry, In: strings.NewReader(tc.input)})
			err := r.Preflight(context.Background())
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if asked := strings.Contains(e.log.String(), "Are you sure"); asked != tc.wantAsk {
				t.Errorf("asked = %v\n%s", asked, e.log.String())
			}
		})
	}
}

// fakeCluster is an etcd cluster of members; those whose client URL is in down do not answer.
type fakeCluster struct {
	etcdcluster.Client // the calls reset never makes panic
	members            []etcdcluster.Member
	down               map[string]bool
	removed            []uint64
}

func (c *fakeCluster) MemberList(context.Context) ([]etcdcluster.Member, error) {
	return slices.Clone(c.members), nil
}
func (c *fakeCluster) MemberRemove(_ context.Context, id uint64) error {
	c.removed = append(c.removed, id)
	return nil
}
func (c *fakeCluster) Status(_ context.Context, endpoint string) (etcdcluster.Status, error) {
	for _, m := range c.members {
		if slices.Contains(m.ClientURLs, endpoint) && !c.down[endpoint] {
			return etcdcluster.Status{MemberID: m.ID, Leader: 1}, nil
		}
	}
	return etcdcluster.Status{}, context.DeadlineExceeded
}
func (c *fakeCluster) Close() error { return nil }

func etcdMember(id uint64, name, addr string) etcdcluster.Member {
	return etcdcluster.Member{ID: id, Name: name, PeerURLs: []string{"https://" + addr + ":2380"}, ClientURLs: []string{"https://" + addr + ":2379"}}
}

func TestRemoveEtcdMember(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	self := etcdMember(0xa1, "node1", "192.168.0.10")
	others := []etcdcluster.Member{etcdMember(0xb2, "node2", "192.168.0.11"), etcdMember(0xc3, "node3", "192.168.0.12")}
	node3down := map[string]bool{"https://192.168.0.12:2379": true}
	for _, tc := range []struct {
		name        string
		members     []etcdcluster.Member
		down        map[string]bool
		dry, force  bool
		ignore      []string // --ignore-preflight-errors
		noEtcd      bool
		stopped     bool
		wantRemoved []uint64
		wantLog     string
		wantErr     string
	}{
		{name: "single member", members: []etcdcluster.Member{self}, wantLog: "only member"},
		{name: "one of three", members: append([]etcdcluster.Member{self}, others...), wantRemoved: []uint64{0xa1}, wantLog: `Removed etcd member "node1" (ID a1)`},
		{name: "dry run", members: append([]etcdcluster.Member{self}, others...), dry: true, wantLog: `Would remove etcd member "node1"`},
		{name: "not a member", members: others, wantLog: "is not among"},
		{name: "no local etcd", noEtcd: true, wantLog: "No local etcd member"},
		{name: "etcd not running, no other member found", stopped: true, members: append([]etcdcluster.Member{self}, others...), wantLog: "does not answer"},
		// node3 is down: without node1, node2 alone is not a quorum of two.
		{name: "quorum refused", members: append([]etcdcluster.Member{self}, others...), down: node3down,
			wantErr: `refusing to reset this node: removing etcd member "node1" (ID a1, peer https://192.168.0.10:2380) would leave 2 voting members of which 1 are healthy, fewer than the 2 a quorum needs`},
		{name: "quorum refused, dry run", members: append([]etcdcluster.Member{self}, others...), down: node3down, dry: true, wantErr: "refusing to reset this node"},
		// --force only skips the prompt: scripts pass it always.
		{name: "quorum refused despite --force", members: append([]etcdcluster.Member{self}, others...), down: node3down, force: true,
			wantErr: "refusing to reset this node"},
		{name: "quorum check ignored", members: append([]etcdcluster.Member{self}, others...), down: node3down, force: true, ignore: []string{"etcdquorum"},
			wantRemoved: []uint64{0xa1}, wantLog: "WARNING: --ignore-preflight-errors=EtcdQuorum: going on although removing etcd member"},
		{name: "every check ignored", members: append([]etcdcluster.Member{self}, others...), down: node3down, ignore: []string{"all"},
			wantRemoved: []uint64{0xa1}, wantLog: "going on although removing etcd member"},
		{name: "another check ignored", members: append([]etcdcluster.Member{self}, others...), down: node3down, ignore: []string{"KubeletMounts"},
			wantErr: "refusing to reset this node"},
		{name: "two members, the other down", members: []etcdcluster.Member{self, others[0]}, down: map[string]bool{"https://192.168.0.11:2379": true},
			wantErr: `unhealthy: "node2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cluster := &fakeCluster{members: tc.members, down: tc.down}
			var dialed []string
			e.sys.DialEtcd = func(_ context.Context, endpoints []string, cfg *tls.Config) (etcdcluster.Client, error) {
				if cfg == nil || len(cfg.Certificates) != 1 {
					return nil, errors.New("no client certificate")
				}
				dialed = endpoints
				return cluster, nil
			}
			if !tc.noEtcd {
				p := port
				if tc.stopped {
					p = closedPort(t)
				}
				writeEtcdPKI(t, e)
				e.write("var/lib/kubestrap/supervisor.json", etcdSpec(e, p, ""))
			}
			r := e.newReset(Options{Force: tc.force, DryRun: tc.dry, IgnorePreflightErrors: tc.ignore})
			err := r.RemoveEtcdMember(context.Background())
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), "run reset again with --ignore-preflight-errors=EtcdQuorum") || !strings.Contains(err.Error(), "nothing was stopped or deleted") || strings.Contains(err.Error(), "pass --force")) {
				t.Errorf("the refusal does not say how to override it and that nothing changed: %v", err)
			}
			if !slices.Equal(cluster.removed, tc.wantRemoved) {
				t.Errorf("removed %x, want %x", cluster.removed, tc.wantRemoved)
			}
			if !strings.Contains(e.log.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, e.log.String())
			}
			if tc.wantRemoved != nil && (len(dialed) == 0 || !strings.Contains(dialed[0], "127.0.0.1")) {
				t.Errorf("dialed %v, want the loopback client URL first", dialed)
			}
		})
	}
}

// A reset whose quorum check refuses stops nothing and deletes nothing: the whole workflow ends at
// remove-etcd-member with an error.
func TestResetRefusedByQuorumGuardChangesNothing(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := newEnv(t)
	cluster := &fakeCluster{members: []etcdcluster.Member{etcdMember(0xa1, "node1", "192.168.0.10"), etcdMember(0xb2, "node2", "192.168.0.11")},
		down: map[string]bool{"https://192.168.0.11:2379": true}}
	e.sys.DialEtcd = func(context.Context, []string, *tls.Config) (etcdcluster.Client, error) { return cluster, nil }
	writeEtcdPKI(t, e)
	e.write("var/lib/kubestrap/supervisor.json", etcdSpec(e, l.Addr().(*net.TCPAddr).Port, ""))
	before := snapshotFiles(t, e.root)
	// Confirmed at the prompt: the quorum guard needs --ignore-preflight-errors=EtcdQuorum itself.
	e.sys.IsTerminal = func(io.Reader) bool { return true }
	r := e.newReset(Options{In: strings.NewReader("y\n")})
	err = RunAll(context.Background(), NewRunner(), r, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "refusing to reset this node") {
		t.Fatalf("err = %v", err)
	}
	if e.localStops != 0 || len(cluster.removed) != 0 {
		t.Errorf("a refused reset stopped the control plane (%d) or removed members %x", e.localStops, cluster.removed)
	}
	if after := snapshotFiles(t, e.root); !maps.Equal(before, after) {
		t.Errorf("a refused reset changed files:\nbefore %v\nafter  %v", before, after)
	}
}

// When this node's etcd is down (a powered-off node), the other members are found through the API
// or through this member's --initial-cluster, and the member is removed through them.
func TestRemoveEtcdMemberThroughOthers(t *testing.T) {
	t.Parallel()
	// Another member's client port on 127.0.0.2; this member's own port (the same number on
	// 127.0.0.1) has nothing listening.
	other, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	port := other.Addr().(*net.TCPAddr).Port
	if c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port)); err == nil {
		c.Close()
		t.Skipf("port %d is in use on 127.0.0.1", port)
	}
	otherURL := "https://127.0.0.2:" + itoa(port)
	self := etcdMember(0xa1, "node1", "192.168.0.10")
	node2 := etcdcluster.Member{ID: 0xb2, Name: "node2", PeerURLs: []string{"https://127.0.0.2:2380"}, ClientURLs: []string{otherURL}}
	node3 := etcdMember(0xc3, "node3", "192.168.0.12")
	for _, tc := range []struct {
		name           string
		fromAPI        []string
		initialCluster string
	}{
		{name: "through the API", fromAPI: []string{"https://192.168.0.10:" + itoa(port), otherURL}},
		{name: "through --initial-cluster", initialCluster: "node1=https://192.168.0.10:2380,node2=https://127.0.0.2:2380"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// node1 (this node) is down; node2 and node3 are a healthy quorum of two.
			cluster := &fakeCluster{members: []etcdcluster.Member{self, node2, node3}, down: map[string]bool{"https://192.168.0.10:2379": true}}
			var dialed []string
			e.sys.DialEtcd = func(_ context.Context, endpoints []string, _ *tls.Config) (etcdcluster.Client, error) {
				dialed = endpoints
				return cluster, nil
			}
			e.sys.EtcdEndpoints = func(_ context.Context, p int32) ([]string, error) {
				if int(p) != port {
					return nil, fmt.Errorf("asked for client port %d, want %d", p, port)
				}
				return tc.fromAPI, nil
			}
			writeEtcdPKI(t, e)
			e.write("var/lib/kubestrap/supervisor.json", etcdSpec(e, port, tc.initialCluster))
			r := e.newReset(Options{})
			if err := r.RemoveEtcdMember(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dialed, []string{otherURL}) {
				t.Errorf("dialed %v, want only the other member %s", dialed, otherURL)
			}
			if !slices.Equal(cluster.removed, []uint64{0xa1}) {
				t.Errorf("removed %x, want this node's a1", cluster.removed)
			}
			if !strings.Contains(e.log.String(), "removing its member through the other members at "+otherURL) {
				t.Errorf("log:\n%s", e.log.String())
			}
		})
	}
}

// snapshotFiles maps every file under root to its content.
func snapshotFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// etcdSpec is a supervisor spec holding only an etcd member on node1 listening on port, with
// initialCluster when not empty.
func etcdSpec(e *env, port int, initialCluster string) string {
	pkiDir := e.path("etc/kubernetes/pki/etcd")
	ic := ""
	if initialCluster != "" {
		ic = `"--initial-cluster=` + initialCluster + `",
  `
	}
	return `{"root": "` + e.root + `", "components": [{"name": "etcd", "args": [
  "--advertise-client-urls=https://192.168.0.10:` + itoa(port) + `",
  "--initial-advertise-peer-urls=https://192.168.0.10:2380",
  ` + ic + `"--listen-client-urls=https://127.0.0.1:` + itoa(port) + `,https://192.168.0.10:` + itoa(port) + `",
  "--name=node1",
  "--trusted-ca-file=` + pkiDir + `/ca.crt"]}]}`
}

func itoa(i int) string { return strconv.Itoa(i) }

// writeEtcdPKI writes an etcd CA and a healthcheck client certificate signed by it.
func writeEtcdPKI(t *testing.T, e *env) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcd-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	// The CA's own pair stands in for the client pair: only loading is exercised here.
	e.write("etc/kubernetes/pki/etcd/ca.crt", certPEM)
	e.write("etc/kubernetes/pki/etcd/healthcheck-client.crt", certPEM)
	e.write("etc/kubernetes/pki/etcd/healthcheck-client.key", keyPEM)
}

func TestUnmountFlags(t *testing.T) {
	t.Parallel()
	got, err := unmountFlags([]string{"MNT_DETACH", "MNT_FORCE"})
	if err != nil || got != syscall.MNT_DETACH|syscall.MNT_FORCE|0x8 {
		t.Errorf("flags = %#x, %v", got, err)
	}
	if _, err := unmountFlags([]string{"MNT_BOGUS"}); err == nil {
		t.Error("unknown flag accepted")
	}
}

func TestMountsUnder(t *testing.T) {
	t.Parallel()
	got := mountsUnder([]string{"/", "/var/lib/kubelet", "/var/lib/kubelet/pods/a/volumes/x", "/var/lib/kubelet-other", "/var/lib/kubelet/pods/a/volumes/x/sub", "/var/lib/kubelet/pods/b"}, "/var/lib/kubelet")
	want := []string{"/var/lib/kubelet/pods/a/volumes/x/sub", "/var/lib/kubelet/pods/a/volumes/x", "/var/lib/kubelet/pods/b"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestRefersTo(t *testing.T) {
	t.Parallel()
	for arg, want := range map[string]bool{
		"/r":                          true,
		"/r/etc/kubernetes":           true,
		"--kubeconfig=/r/etc/a.conf":  true,
		"--x=/a,/r/b":                 true,
		"/r2/etc":                     false,
		"--root-dir=/r2":              false,
		"r/etc":                       false,
		"--cert-dir=/elsewhere/r/pki": false,
	} {
		if got := refersTo(arg, "/r"); got != want {
			t.Errorf("refersTo(%q) = %v, want %v", arg, got, want)
		}
	}
}
