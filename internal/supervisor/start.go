package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// ErrAlreadyRunning is returned (wrapped, naming the pid) when a supervisor of the same root is
// already running.
var ErrAlreadyRunning = errors.New("a kubestrap supervisor is already running")

// startupTimeout bounds the wait for a freshly launched supervisor's pid file.
const startupTimeout = 15 * time.Second

// Start launches the supervisor of p's root with the real system; see Host.Start.
func Start(p paths.Paths, spec Spec, exe string) (int, error) {
	return Host{}.Start(p, spec, exe)
}

// Start persists spec, links every component started through its default link
// (p.ComponentBinary) to exe and launches `exe supervise --root-dir <root>` detached from the
// caller: in its own session (no controlling terminal, no SIGHUP when
// the terminal closes, no signal meant for the caller's process group), stdin /dev/null, output
// appended to <LogDir>/supervisor.log. It returns the supervisor's pid once the supervisor has
// written its pid file, an error with the log's tail if it exits first, and the running
// supervisor's pid with ErrAlreadyRunning if the root already has one.
func (h Host) Start(p paths.Paths, spec Spec, exe string) (int, error) {
	h = h.withDefaults()
	if pid := h.liveSupervisor(p); pid != 0 {
		return pid, fmt.Errorf("%w for %s (pid %d)", ErrAlreadyRunning, p.Root(), pid)
	}
	exe, err := filepath.Abs(exe)
	if err != nil {
		return 0, err
	}
	spec.Root, spec.Executable = p.Root(), exe
	spec = spec.withDefaults(p)
	if err := spec.validate(p); err != nil {
		return 0, err
	}
	var links []string
	for _, c := range spec.Components {
		if c.Path == p.ComponentBinary(c.Name) {
			links = append(links, c.Name)
		}
	}
	if err := LinkComponents(h.Files, p, links, exe); err != nil {
		return 0, err
	}
	if err := WriteSpec(h.Files, p, spec); err != nil {
		return 0, err
	}
	for _, dir := range []string{p.RunDir(), p.LogDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
	}
	logPath := supervisorLog(p)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	// Only this start's lines belong in an error message.
	offset, _ := logFile.Seek(0, io.SeekEnd)
	args := []string{"supervise", "--root-dir", p.Root()}
	if level := logx.From(h.Log).Level(); level > 0 {
		// The detached supervisor reports its own writes and waits in supervisor.log.
		args = append(args, "--verbosity="+strconv.Itoa(level))
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	logFile.Close()
	if err != nil {
		return 0, fmt.Errorf("starting the supervisor: %w", err)
	}
	// Reap the supervisor if it ends while this process still lives (an early failure, or a
	// long-running caller such as a test): otherwise it would linger as a zombie.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return h.awaitPidFile(p, cmd, exited, logPath, offset)
}

// awaitPidFile waits until the supervisor just launched as cmd has written its pid file, and
// reports the wait at -v 1. It is a select rather than apimachinery's wait.Poll* because it
// waits on the child's exit as well, and reports that at once with the end of its log.
func (h Host) awaitPidFile(p paths.Paths, cmd *exec.Cmd, exited <-chan error, logPath string, offset int64) (pid int, err error) {
	done := logx.Wait(h.Log, "the supervisor (pid %d) to write %s", cmd.Process.Pid, p.PidFile(supervisorName))
	defer func() { done(err) }()

	deadline := time.NewTimer(startupTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if pid, _ := readPidFile(p.PidFile(supervisorName)); pid == cmd.Process.Pid {
			return pid, nil
		}
		select {
		case err := <-exited:
			if pid := h.liveSupervisor(p); pid != 0 {
				// Another start won the race for the root's lock.
				return pid, fmt.Errorf("%w for %s (pid %d)", ErrAlreadyRunning, p.Root(), pid)
			}
			return 0, fmt.Errorf("the supervisor exited during start-up (%v); the end of %s:\n%s", err, logPath, logTail(logPath, offset))
		case <-deadline.C:
			_ = cmd.Process.Kill()
			return 0, fmt.Errorf("the supervisor (pid %d) did not write %s within %s; the end of %s:\n%s",
				cmd.Process.Pid, p.PidFile(supervisorName), startupTimeout, logPath, logTail(logPath, offset))
		case <-tick.C:
		}
	}
}

// logTail returns the last lines written to path after offset.
func logTail(path string, offset int64) string {
	const maxTail = 4096
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "(" + err.Error() + ")"
	}
	from := max(offset, fi.Size()-maxTail)
	if from >= fi.Size() {
		return "(nothing logged)"
	}
	data := make([]byte, fi.Size()-from)
	n, _ := f.ReadAt(data, from)
	data = bytes.TrimSpace(data[:n])
	if from > offset {
		// Cut a partial first line.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	if len(data) == 0 {
		return "(nothing logged)"
	}
	return string(data)
}
