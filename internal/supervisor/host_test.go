package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/procfs"
)

func TestIsSupervisorOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		argv []string
		want bool
	}{
		{[]string{"/usr/bin/kubestrap", "supervise", "--root-dir", "/tmp/a"}, true},
		{[]string{"kubestrap", "--root-dir=/tmp/a/", "supervise"}, true},
		{[]string{"kubestrap", "supervise", "--root-dir", "/tmp/b"}, false},
		{[]string{"kubestrap", "supervise", "--root-dir", "/tmp/a/sub"}, false},
		{[]string{"kubestrap", "status", "--root-dir", "/tmp/a"}, false},
		{[]string{"kubestrap", "supervise", "--root-dir"}, false},
		{[]string{"supervise"}, false},
		{nil, false},
	} {
		if got := IsSupervisorOf(tc.argv, "/tmp/a"); got != tc.want {
			t.Errorf("IsSupervisorOf(%q) = %v, want %v", tc.argv, got, tc.want)
		}
	}
}

func TestIsComponentOf(t *testing.T) {
	t.Parallel()
	bin := "/r/var/lib/kubestrap/bin"
	for _, tc := range []struct {
		argv []string
		want bool
	}{
		{[]string{bin + "/kube-apiserver", "--advertise-address=10.0.0.1"}, true},
		{[]string{bin + "/etcd"}, true},
		{[]string{"/usr/bin/vim", bin + "/etcd"}, false}, // only mentions the dir
		{[]string{bin + "/sub/etcd"}, false},
		{[]string{"/r2/var/lib/kubestrap/bin/etcd"}, false},
		{nil, false},
	} {
		if got := isComponentOf(tc.argv, bin); got != tc.want {
			t.Errorf("isComponentOf(%q) = %v, want %v", tc.argv, got, tc.want)
		}
	}
}

// fakeProc builds a /proc look-alike for procfs.FS and signals for Host.Kill: a process "dies" when
// its directory is removed.
type fakeProc struct {
	t    *testing.T
	root string

	mu      sync.Mutex
	signals []string
	// onSignal decides what a signal does to a pid; nil: SIGTERM and SIGKILL end it.
	onSignal func(pid int, sig syscall.Signal) bool
}

func newFakeProc(t *testing.T) *fakeProc {
	return &fakeProc{t: t, root: t.TempDir()}
}

func (f *fakeProc) add(pid int, state byte, argv ...string) {
	f.t.Helper()
	dir := filepath.Join(f.root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	cmdline := ""
	if len(argv) > 0 {
		cmdline = strings.Join(argv, "\x00") + "\x00"
	}
	comm := "x"
	if len(argv) > 0 {
		comm = filepath.Base(argv[0])
	}
	stat := strconv.Itoa(pid) + " (" + comm + ") " + string(state) + " 1 " + strconv.Itoa(pid) + " " + strconv.Itoa(pid) + " 0 -1\n"
	os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o644)
	os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644)
}

func (f *fakeProc) kill(pid int, sig syscall.Signal) error {
	f.mu.Lock()
	f.signals = append(f.signals, strconv.Itoa(pid)+":"+sig.String())
	dies := f.onSignal == nil && (sig == syscall.SIGTERM || sig == syscall.SIGKILL) || f.onSignal != nil && f.onSignal(pid, sig)
	f.mu.Unlock()
	dir := filepath.Join(f.root, strconv.Itoa(pid))
	if _, err := os.Stat(dir); err != nil {
		return syscall.ESRCH
	}
	if dies {
		os.RemoveAll(dir)
	}
	return nil
}

func (f *fakeProc) gone(pid int) {
	os.RemoveAll(filepath.Join(f.root, strconv.Itoa(pid)))
}

func (f *fakeProc) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.signals)
}

func (f *fakeProc) host() Host {
	return Host{Proc: procfs.FS{Root: f.root}, Kill: f.kill, Self: 1}
}

// TestRunning: a root's supervisor is recognised by a pid file naming a live supervisor of that
// root, or, before it has written one, by its held lock.
func TestRunning(t *testing.T) {
	t.Parallel()
	f := newFakeProc(t)
	p := paths.MustUnder(t.TempDir())
	h := f.host()
	if err := os.MkdirAll(p.RunDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if ok, pid := h.Running(p); ok || pid != 0 {
		t.Fatalf("nothing started: Running = %v, %d", ok, pid)
	}
	if _, err := os.Stat(lockFile(p)); err == nil {
		t.Error("Running created the lock file")
	}

	// A pid file of a live supervisor of this root.
	f.add(40, 'S', "/usr/bin/kubestrap", "supervise", "--root-dir", p.Root())
	if err := writePidFile(p.PidFile(supervisorName), 40, nil); err != nil {
		t.Fatal(err)
	}
	if ok, pid := h.Running(p); !ok || pid != 40 {
		t.Errorf("live supervisor: Running = %v, %d; want true, 40", ok, pid)
	}
	// A stale pid file whose pid now belongs to something else.
	f.gone(40)
	f.add(40, 'S', "/usr/bin/sleep", "60")
	if ok, _ := h.Running(p); ok {
		t.Error("a reused pid counts as the supervisor")
	}

	// The lock held (by another open file, as another process would) without a pid file yet.
	os.Remove(p.PidFile(supervisorName))
	lock, err := os.OpenFile(lockFile(p), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if ok, _ := h.Running(p); ok {
		t.Error("an unlocked lock file counts as a running supervisor")
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if ok, pid := h.Running(p); !ok || pid != 0 {
		t.Errorf("lock held: Running = %v, %d; want true, 0", ok, pid)
	}
	// Running's probe must not keep or steal the lock.
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if ok, _ := h.Running(p); ok {
		t.Error("still running after the lock was released")
	}
}
