package reset

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/etcdcluster"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
	"github.com/kubestrap/kubestrap/internal/supervisor"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// fakeProc is one process of fakeProcs.
type fakeProc struct {
	argv []string
	ppid int
	ns   string
	// stubborn processes ignore SIGTERM.
	stubborn bool
	dead     bool
}

// fakeProcs is a process table that Kill acts on.
type fakeProcs struct {
	mu      sync.Mutex
	m       map[int]*fakeProc
	signals []string
}

func newFakeProcs() *fakeProcs { return &fakeProcs{m: map[int]*fakeProc{}} }

func (f *fakeProcs) add(pid, ppid int, argv ...string) *fakeProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &fakeProc{argv: argv, ppid: ppid, ns: "mnt:[1]"}
	f.m[pid] = p
	return p
}

func (f *fakeProcs) Pids() ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for pid, p := range f.m {
		if !p.dead {
			out = append(out, pid)
		}
	}
	return out, nil
}

func (f *fakeProcs) get(pid int) (*fakeProc, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.m[pid]
	return p, ok && !p.dead
}

func (f *fakeProcs) Cmdline(pid int) ([]string, error) {
	if p, ok := f.get(pid); ok {
		return p.argv, nil
	}
	return nil, os.ErrNotExist
}

func (f *fakeProcs) Alive(pid int) bool { _, ok := f.get(pid); return ok }

func (f *fakeProcs) Parent(pid int) int {
	if p, ok := f.get(pid); ok {
		return p.ppid
	}
	return 0
}

func (f *fakeProcs) MountNS(pid int) string {
	if p, ok := f.get(pid); ok {
		return p.ns
	}
	return ""
}

func (f *fakeProcs) kill(pid int, sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.m[pid]
	if !ok || p.dead {
		return syscall.ESRCH
	}
	f.signals = append(f.signals, fmt.Sprintf("%d:%v", pid, sig))
	if sig == syscall.SIGKILL || !p.stubborn {
		p.dead = true
	}
	return nil
}

func (f *fakeProcs) alivePids() []int {
	pids, _ := f.Pids()
	sort.Ints(pids)
	return pids
}

// fakeMounts is a mount table that the fake unmount edits.
type fakeMounts struct {
	mu     sync.Mutex
	points []string
	// fail makes unmount fail with this error.
	fail      error
	unmounted []string
}

func (m *fakeMounts) MountPoints() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.points), nil
}

func (m *fakeMounts) unmount(path string, flags int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if flags&0x8 == 0 {
		return fmt.Errorf("unmount %s without UMOUNT_NOFOLLOW", path)
	}
	if m.fail != nil {
		return m.fail
	}
	m.unmounted = append(m.unmounted, path)
	m.points = slices.DeleteFunc(m.points, func(p string) bool { return p == path })
	return nil
}

// fakeSystemd records the calls reset makes.
type fakeSystemd struct{ calls []string }

func (s *fakeSystemd) Reload(context.Context) error { s.calls = append(s.calls, "reload"); return nil }
func (s *fakeSystemd) StopAndDisable(_ context.Context, units []string) error {
	s.calls = append(s.calls, "stop-disable "+strings.Join(units, ","))
	return nil
}
func (s *fakeSystemd) Close() {}

// env is a test root with a fake host around it.
type env struct {
	t      *testing.T
	root   string
	p      paths.Paths
	procs  *fakeProcs
	mounts *fakeMounts
	sd     *fakeSystemd
	log    bytes.Buffer
	out    bytes.Buffer
	// level is the -v of the run: the log is a logx.Logger at that level over log.
	level int
	// localStops counts calls of the local supervisor stop.
	localStops int
	sys        System
}

const selfPID, shellPID = 1000, 999

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, root: root, p: paths.MustUnder(root), procs: newFakeProcs(), mounts: &fakeMounts{}, sd: &fakeSystemd{}}
	// The test itself runs reset from a shell that names the root: neither may be stopped.
	e.procs.add(shellPID, 1, "/bin/bash", "-c", "kubestrap reset --root-dir "+root)
	e.procs.add(selfPID, shellPID, "/usr/local/bin/kubestrap", "reset", "--root-dir", root)
	e.sys = System{
		Mounts:  e.mounts,
		Unmount: e.mounts.unmount,
		Procs:   e.procs,
		Kill:    e.procs.kill,
		Self:    selfPID,
		UID:     0,
		StopLocal: func(p paths.Paths, _ time.Duration) (bool, error) {
			e.localStops++
			// The supervisor stops what it started: everything through the bin dir.
			for pid, pr := range e.procs.m {
				if len(pr.argv) > 0 && (filepath.Dir(pr.argv[0]) == p.BinDir() || supervisor.IsSupervisorOf(pr.argv, p.Root())) && !pr.stubborn {
					_ = e.procs.kill(pid, syscall.SIGTERM)
				}
			}
			return true, nil
		},
		Manageable: func(paths.Paths) (bool, string) { return false, "test host" },
		Systemd:    func(context.Context) (Systemd, error) { return e.sd, nil },
		DialEtcd: func(context.Context, []string, *tls.Config) (etcdcluster.Client, error) {
			return nil, fmt.Errorf("no etcd in unit tests")
		},
		EtcdEndpoints: func(context.Context, int32) ([]string, error) {
			return nil, fmt.Errorf("no API in unit tests")
		},
		IsTerminal: func(io.Reader) bool { return false },
		Poll:       time.Millisecond,
		KillWait:   100 * time.Millisecond,
		PodWait:    100 * time.Millisecond,
	}.withDefaults()
	return e
}

func (e *env) path(rel string) string { return filepath.Join(e.root, rel) }

func (e *env) write(rel, content string) {
	e.t.Helper()
	path := e.path(rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) symlink(target, rel string) {
	e.t.Helper()
	path := e.path(rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		e.t.Fatal(err)
	}
}

// testConfig is the shared defaulted configuration (configtest) for this package's node.
func testConfig() *config.Config { return configtest.Init("192.168.0.10", "node1") }

// populateInit lays out what a local-mode init and a join leave behind, with stand-in contents:
// the layout, not the content, is what reset works from.
func (e *env) populateInit() {
	e.t.Helper()
	for _, f := range kubeconfigFiles {
		e.write("etc/kubernetes/"+f, "kubeconfig")
	}
	for _, f := range PKIFiles() {
		e.write("etc/kubernetes/pki/"+f, "pem")
	}
	for _, f := range kubestrapConfigFiles {
		e.write("etc/kubernetes/kubestrap/"+f, "yaml")
	}
	e.write("var/lib/etcd/member/snap/db", "bolt")
	e.write("var/lib/etcd/member/wal/0000000000000000-0000000000000000.wal", "wal")
	e.write("run/kubestrap/supervisor.pid", "4242\n")
	e.write("run/kubestrap/etcd.pid", "4243\n")
	e.write("run/kubestrap/status.json", "{}")
	e.write("var/log/kubestrap/etcd.log", "log")
	e.write("var/log/kubestrap/supervisor.log", "log")
	e.write("var/log/kubestrap/audit/kube-apiserver-audit.log", "audit")
	e.write("var/lib/kubelet/config.yaml", "kubelet")
	e.write("var/lib/kubelet/kubeadm-flags.env", "KUBELET_KUBEADM_ARGS=")
	e.write("var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem", "pem")
	e.symlink(e.path("var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem"), "var/lib/kubelet/pki/kubelet-client-current.pem")

	cfg := testConfig()
	var specs []supervisor.ComponentSpec
	for _, c := range components.ControlPlane(cfg, e.p) {
		specs = append(specs, supervisor.ComponentSpec{Name: c.Name, Args: c.Args, HealthURL: c.HealthURL()})
	}
	exe, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := supervisor.WriteSpec(fsutil.NewDisk(nil), e.p, supervisor.Spec{Root: e.root, Executable: exe, Components: specs}); err != nil {
		e.t.Fatal(err)
	}
	if err := supervisor.LinkComponents(fsutil.NewDisk(nil), e.p, runmode.ControlPlane, exe); err != nil {
		e.t.Fatal(err)
	}
	unit, dropIn, err := systemd.KubeletUnits(e.p, "/usr/bin/kubelet")
	if err != nil {
		e.t.Fatal(err)
	}
	e.write("etc/systemd/system/kubelet.service", string(unit))
	e.write("etc/systemd/system/kubelet.service.d/10-kubeadm.conf", string(dropIn))
}

// runningLocal adds the processes of a running local control plane to the process table.
func (e *env) runningLocal() {
	e.procs.add(4242, 1, "/usr/local/bin/kubestrap", "supervise", "--root-dir", e.root)
	for i, c := range runmode.ControlPlane {
		e.procs.add(4243+i, 4242, e.p.ComponentBinary(c), "--flag=x")
	}
}

// tree lists every path under the root with its type, mode and link target.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		line := rel + " " + fi.Mode().String()
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(path)
			line += " -> " + target
		} else if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(path)
			line += " " + fmt.Sprint(len(data))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// paths lists the paths under root, relative, without the root itself.
func relPaths(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, l := range tree(t, root) {
		rel, _, _ := strings.Cut(l, " ")
		if rel != "." {
			out = append(out, rel)
		}
	}
	return out
}

func (e *env) newReset(o Options) *Reset {
	e.t.Helper()
	o.Paths = e.p
	o.Log, o.Out = logx.New(&e.log, e.level), &e.out
	if o.In == nil {
		o.In = strings.NewReader("")
	}
	r, err := New(o, e.sys)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// runAll runs every phase in order, as `kubestrap reset` does, and Finish.
func runAll(t *testing.T, r *Reset) error {
	t.Helper()
	ctx := context.Background()
	for _, phase := range []func(context.Context) error{r.Preflight, r.RemoveEtcdMember, r.Stop, r.Cleanup} {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	r.Finish()
	return nil
}

func keptPaths(r *Reset) []string {
	var out []string
	for _, k := range r.Kept() {
		out = append(out, k.Path)
	}
	sort.Strings(out)
	return out
}
