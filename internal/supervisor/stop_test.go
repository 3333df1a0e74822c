package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/paths"
)

func writeTestPid(t *testing.T, p paths.Paths, name string, pid int) {
	t.Helper()
	if err := os.MkdirAll(p.RunDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writePidFile(p.PidFile(name), pid, nil); err != nil {
		t.Fatal(err)
	}
}

func assertNoRunFiles(t *testing.T, p paths.Paths) {
	t.Helper()
	for _, pattern := range []string{"*.pid", "status.json", "supervisor.lock"} {
		if m, _ := filepath.Glob(filepath.Join(p.RunDir(), pattern)); len(m) > 0 {
			t.Errorf("left in the run dir: %v", m)
		}
	}
}

func TestStopNothingRunning(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	f := newFakeProc(t)
	// Stale files of a supervisor that is long gone, its pid now someone else's.
	writeTestPid(t, p, "supervisor", 40)
	writeTestPid(t, p, "etcd", 41)
	os.WriteFile(statusFile(p), []byte("{}"), 0o644)
	f.add(40, 'S', "/bin/bash")

	stopped, err := f.host().Stop(p, time.Second)
	if err != nil || stopped {
		t.Errorf("Stop = %v, %v; want false, nil", stopped, err)
	}
	if s := f.sent(); len(s) > 0 {
		t.Errorf("signals sent: %v", s)
	}
	assertNoRunFiles(t, p)
}

func TestStopSupervisorStopsComponents(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	f := newFakeProc(t)
	f.add(50, 'S', "/usr/bin/kubestrap", "supervise", "--root-dir", p.Root())
	f.add(51, 'S', p.ComponentBinary("etcd"), "--data-dir=x")
	f.add(52, 'S', p.ComponentBinary("kube-apiserver"), "--etcd-servers=x")
	writeTestPid(t, p, "supervisor", 50)
	writeTestPid(t, p, "etcd", 51)
	writeTestPid(t, p, "kube-apiserver", 52)
	// The supervisor stops its components itself, in its own order.
	f.onSignal = func(pid int, sig syscall.Signal) bool {
		if pid == 50 && sig == syscall.SIGTERM {
			go func() {
				time.Sleep(100 * time.Millisecond)
				f.gone(52)
				f.gone(51)
				f.gone(50)
			}()
		}
		return false
	}
	stopped, err := f.host().Stop(p, 5*time.Second)
	if err != nil || !stopped {
		t.Fatalf("Stop = %v, %v; want true, nil", stopped, err)
	}
	if got, want := f.sent(), []string{"50:terminated"}; !slices.Equal(got, want) {
		t.Errorf("signals sent %v, want only SIGTERM to the supervisor %v", got, want)
	}
	assertNoRunFiles(t, p)
}

func TestStopKillsOrphansAndStragglers(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	other := paths.MustUnder(t.TempDir())
	f := newFakeProc(t)
	// Orphans of a supervisor killed with SIGKILL: no supervisor, no pid file for 61.
	f.add(60, 'S', p.ComponentBinary("etcd"))
	f.add(61, 'S', p.ComponentBinary("kube-apiserver"), "--secure-port=6443")
	// Not ours: a pid file whose pid was reused, a process merely naming the bin dir, another
	// root's supervisor and component, and a zombie.
	writeTestPid(t, p, "kube-scheduler", 62)
	f.add(62, 'S', "/bin/bash")
	f.add(63, 'S', "/usr/bin/vim", p.ComponentBinary("etcd"))
	f.add(64, 'S', "/usr/bin/kubestrap", "supervise", "--root-dir", other.Root())
	f.add(65, 'S', other.ComponentBinary("etcd"))
	f.add(66, 'Z', p.ComponentBinary("kube-scheduler"))
	// The apiserver ignores SIGTERM.
	f.onSignal = func(pid int, sig syscall.Signal) bool { return pid != 61 || sig == syscall.SIGKILL }

	begin := time.Now()
	stopped, err := f.host().Stop(p, 300*time.Millisecond)
	if err != nil || !stopped {
		t.Fatalf("Stop = %v, %v; want true, nil", stopped, err)
	}
	if took := time.Since(begin); took < 300*time.Millisecond {
		t.Errorf("SIGKILL came after %s, before the %s timeout", took, 300*time.Millisecond)
	}
	got := f.sent()
	slices.Sort(got)
	if want := []string{"60:terminated", "61:killed", "61:terminated"}; !slices.Equal(got, want) {
		t.Errorf("signals sent %v, want %v", got, want)
	}
	for _, pid := range []int{62, 63, 64, 65} {
		if _, err := os.Stat(filepath.Join(f.root, strconv.Itoa(pid))); err != nil {
			t.Errorf("pid %d, not of this root, was stopped", pid)
		}
	}
	assertNoRunFiles(t, p)
}

func TestStopFailsWhenKillFails(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	f := newFakeProc(t)
	f.add(70, 'S', p.ComponentBinary("etcd"))
	h := f.host()
	h.Kill = func(int, syscall.Signal) error { return syscall.EPERM }
	if stopped, err := h.Stop(p, time.Second); err == nil || !stopped {
		t.Errorf("Stop = %v, %v; want true and the permission error", stopped, err)
	}
}
