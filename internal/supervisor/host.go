package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/procfs"
)

// Proc reads the process table. procfs.FS is the real one; tests hand Stop and Status a fake
// directory tree instead of /proc.
type Proc interface {
	// Pids lists the ids of all processes.
	Pids() ([]int, error)
	// Cmdline is the argv of pid; an error when the process is gone.
	Cmdline(pid int) ([]string, error)
	// Alive reports whether pid exists and is not a zombie: a dead child nobody has reaped yet
	// is as stopped as it will ever be.
	Alive(pid int) bool
}

// Clock is the time source of the supervisor's restart backoff and uptimes.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Host is the system boundary of Start, Stop and Status: the process table, signals and the clock.
// The zero value uses the real ones.
type Host struct {
	Proc  Proc
	Kill  func(pid int, sig syscall.Signal) error
	Clock Clock
	// Self is excluded from process scans (default: this process).
	Self int
	// Log receives Start's and Stop's verbose lines (logx: files written and removed, waits);
	// nil discards them.
	Log io.Writer
	// Files writes what Start installs for the supervisor (the component links and the spec);
	// nil is the disk, reporting on Log. The supervisor's runtime state (pid files,
	// status.json, its log) is written directly: it changes while the supervisor runs, which is
	// after and outside the run of the command that installed it.
	Files fsutil.Writer
}

func (h Host) withDefaults() Host {
	if h.Proc == nil {
		h.Proc = procfs.FS{}
	}
	if h.Kill == nil {
		h.Kill = syscall.Kill
	}
	if h.Clock == nil {
		h.Clock = realClock{}
	}
	if h.Self == 0 {
		h.Self = os.Getpid()
	}
	h.Files = fsutil.OrDisk(h.Files, h.Log)
	return h
}

// IsSupervisorOf reports whether argv is `<kubestrap> supervise ... --root-dir <root>`: the
// supervisor of root, as Start launches it. reset uses it too, to recognise the supervisor it stops.
func IsSupervisorOf(argv []string, root string) bool {
	if len(argv) < 2 {
		return false
	}
	sub, dir := false, ""
	for i, a := range argv[1:] {
		switch {
		case a == "supervise":
			sub = true
		case a == "--root-dir" && i+2 < len(argv):
			dir = argv[i+2]
		case strings.HasPrefix(a, "--root-dir="):
			dir = strings.TrimPrefix(a, "--root-dir=")
		}
	}
	return sub && dir != "" && filepath.Clean(dir) == filepath.Clean(root)
}

// isComponentOf reports whether argv[0] is a program in binDir. Only argv[0] counts, so that an
// editor or `ls` merely naming the directory is never mistaken for a component.
func isComponentOf(argv []string, binDir string) bool {
	return len(argv) > 0 && filepath.Dir(argv[0]) == filepath.Clean(binDir)
}

// liveSupervisor returns the pid of the running supervisor of p's root, or 0.
func (h Host) liveSupervisor(p paths.Paths) int {
	pid, err := readPidFile(p.PidFile(supervisorName))
	if err != nil || pid == 0 || !h.Proc.Alive(pid) {
		return 0
	}
	// A pid file can outlive its process and the pid be reused: trust it only if the process
	// is a supervisor of this very root.
	if argv, err := h.Proc.Cmdline(pid); err != nil || !IsSupervisorOf(argv, p.Root()) {
		return 0
	}
	return pid
}

// liveComponent returns the pid recorded for component name if that process still runs as the
// component, or 0.
func (h Host) liveComponent(p paths.Paths, name string) int {
	pid, err := readPidFile(p.PidFile(name))
	if err != nil || pid == 0 {
		return 0
	}
	return h.componentPid(p, pid)
}

// componentPid returns pid if it is a live component process of p's root, or 0.
func (h Host) componentPid(p paths.Paths, pid int) int {
	if pid <= 0 || !h.Proc.Alive(pid) {
		return 0
	}
	if argv, err := h.Proc.Cmdline(pid); err != nil || !isComponentOf(argv, p.BinDir()) {
		return 0
	}
	return pid
}

// scan finds every live process of p's root: supervisors and anything started through its bin
// dir, whoever started it.
func (h Host) scan(p paths.Paths) ([]int, error) {
	pids, err := h.Proc.Pids()
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var found []int
	for _, pid := range pids {
		if pid == h.Self {
			continue
		}
		argv, err := h.Proc.Cmdline(pid)
		if err != nil || len(argv) == 0 {
			continue
		}
		if (IsSupervisorOf(argv, p.Root()) || isComponentOf(argv, p.BinDir())) && h.Proc.Alive(pid) {
			found = append(found, pid)
		}
	}
	return found, nil
}

// signal sends sig to pid, treating "no such process" as done.
func (h Host) signal(pid int, sig syscall.Signal) error {
	if err := h.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sending %v to pid %d: %w", sig, pid, err)
	}
	return nil
}

// Running reports whether a supervisor of p's root runs, with the real system; see Host.Running.
func Running(p paths.Paths) (bool, int) { return Host{}.Running(p) }

// Running reports whether a supervisor of p's root runs: its pid file names a live supervisor of
// this root (pid returned), or its lock is held by a supervisor that has not written its pid file
// yet (pid 0). Either way the root's ports are that supervisor's components'.
func (h Host) Running(p paths.Paths) (running bool, pid int) {
	h = h.withDefaults()
	if pid := h.liveSupervisor(p); pid != 0 {
		return true, pid
	}
	return lockHeld(p), 0
}

// lockHeld reports whether some process holds the root's supervisor lock. It tests with a shared,
// non-blocking lock that it drops at once, and never creates the lock file.
func lockHeld(p paths.Paths) bool {
	f, err := os.Open(lockFile(p))
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}
