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
	"io"
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

// fakeCluster is an etcd cluster of members.
type fakeCluster struct {
	members []EtcdMember
	removed []uint64
}

func (c *fakeCluster) MemberList(context.Context) ([]EtcdMember, error) { return c.members, nil }
func (c *fakeCluster) MemberRemove(_ context.Context, id uint64) error {
	c.removed = append(c.removed, id)
	return nil
}
func (c *fakeCluster) Close() error { return nil }

func TestRemoveEtcdMember(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	self := EtcdMember{ID: 0xa1, Name: "node1", PeerURLs: []string{"https://192.168.0.10:2380"}}
	others := []EtcdMember{{ID: 0xb2, Name: "node2", PeerURLs: []string{"https://192.168.0.11:2380"}}, {ID: 0xc3, Name: "node3", PeerURLs: []string{"https://192.168.0.12:2380"}}}
	for _, tc := range []struct {
		name        string
		members     []EtcdMember
		dry         bool
		noEtcd      bool
		stopped     bool
		wantRemoved []uint64
		wantLog     string
	}{
		{name: "single member", members: []EtcdMember{self}, wantLog: "only member"},
		{name: "one of three", members: append([]EtcdMember{self}, others...), wantRemoved: []uint64{0xa1}, wantLog: `Removed etcd member "node1" (ID a1)`},
		{name: "dry run", members: append([]EtcdMember{self}, others...), dry: true, wantLog: `Would remove etcd member "node1"`},
		{name: "not a member", members: others, wantLog: "is not among"},
		{name: "no local etcd", noEtcd: true, wantLog: "No local etcd member"},
		{name: "etcd not running", stopped: true, members: append([]EtcdMember{self}, others...), wantLog: "does not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cluster := &fakeCluster{members: tc.members}
			var dialed []string
			e.sys.DialEtcd = func(_ context.Context, endpoints []string, cfg *tls.Config) (EtcdCluster, error) {
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
				e.write("var/lib/kubestrap/supervisor.json", etcdSpec(e, p))
			}
			r := e.newReset(Options{Force: true, DryRun: tc.dry})
			if err := r.RemoveEtcdMember(context.Background()); err != nil {
				t.Fatal(err)
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

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// etcdSpec is a supervisor spec holding only an etcd member on node1 listening on port.
func etcdSpec(e *env, port int) string {
	pkiDir := e.path("etc/kubernetes/pki/etcd")
	return `{"root": "` + e.root + `", "components": [{"name": "etcd", "args": [
  "--advertise-client-urls=https://192.168.0.10:` + itoa(port) + `",
  "--initial-advertise-peer-urls=https://192.168.0.10:2380",
  "--listen-client-urls=https://127.0.0.1:` + itoa(port) + `,https://192.168.0.10:` + itoa(port) + `",
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
