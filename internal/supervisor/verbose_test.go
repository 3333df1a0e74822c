package supervisor

import (
	"bytes"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// TestStopVerbose: at -v 1 Stop reports each wait (for the processes after SIGTERM, after
// SIGKILL) with its outcome, and each stale file it removes; at level 0 it prints nothing.
func TestStopVerbose(t *testing.T) {
	t.Parallel()
	for _, level := range []int{0, 1} {
		p := paths.MustUnder(t.TempDir())
		f := newFakeProc(t)
		f.add(60, 'S', p.ComponentBinary("etcd"))
		writeTestPid(t, p, "etcd", 60)
		os.WriteFile(statusFile(p), []byte("{}"), 0o644)
		// etcd ignores SIGTERM.
		f.onSignal = func(pid int, sig syscall.Signal) bool { return sig == syscall.SIGKILL }
		var buf bytes.Buffer
		h := f.host()
		h.Log = logx.New(&buf, level)
		if stopped, err := h.Stop(p, 100*time.Millisecond); err != nil || !stopped {
			t.Fatalf("level %d: Stop = %v, %v", level, stopped, err)
		}
		out := buf.String()
		if level == 0 {
			if out != "" {
				t.Errorf("level 0 printed:\n%s", out)
			}
			continue
		}
		for _, want := range []string{
			"[v1] waiting for pids [60] of " + p.Root() + " to exit after SIGTERM\n",
			"[v1] stopped waiting for pids [60] of " + p.Root() + " to exit after SIGTERM after ",
			": pids [60] still running\n",
			"[v1] waiting for pids [60] to exit after SIGKILL\n",
			"[v1] done waiting for pids [60] to exit after SIGKILL after ",
			"[v1] removed " + p.PidFile("etcd") + "\n",
			"[v1] removed " + statusFile(p) + "\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("level 1 lacks %q:\n%s", want, out)
			}
		}
	}
}

// TestWriteSpecAndLinksVerbose: supervisor.json and each component link are reported at -v 1.
func TestWriteSpecAndLinksVerbose(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	var buf bytes.Buffer
	log := logx.New(&buf, 1)
	if err := WriteSpec(fsutil.NewDisk(log), p, Spec{Components: []ComponentSpec{{Name: "etcd"}}}); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if err := LinkComponents(fsutil.NewDisk(log), p, []string{"etcd"}, exe); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[v1] wrote " + specFile(p) + " (mode 0600, ",
		"[v1] linked " + p.ComponentBinary("etcd") + " -> " + exe + "\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("lacks %q:\n%s", want, buf.String())
		}
	}
}
