package runmode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// TestLocalPrepare: Prepare begins the component program's install and returns at once; Start's
// lookup waits for that install (it does not install again) and prints its lines where Start
// printed them before; Settle prints them when Start never ran. A dry run prepares nothing, and a
// root whose bin dir changed since installs anew.
func TestLocalPrepare(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int32
	install := func(binDir string, log io.Writer) (string, error) {
		calls.Add(1)
		fmt.Fprintf(log, "[control-plane] Installing into %s\n", binDir)
		logx.Printf(log, 1, "copied")
		<-release
		if strings.Contains(binDir, "bad") {
			return "", errors.New("install failed")
		}
		return binDir + "/prog", nil
	}
	p := paths.MustUnder(t.TempDir())
	var log bytes.Buffer
	r := &Run{Paths: p, Log: logx.New(&log, 1), install: install}
	Prepare(Local{}, r) // returns with the install blocked
	if log.Len() != 0 {
		t.Errorf("Prepare printed %q before Start", log.String())
	}
	got := make(chan string)
	go func() {
		exe, err := componentProgram(r)
		if err != nil {
			t.Error(err)
		}
		got <- exe
	}()
	close(release)
	if exe := <-got; exe != p.BinDir()+"/prog" {
		t.Errorf("componentProgram = %q", exe)
	}
	if exe, err := componentProgram(r); err != nil || exe != p.BinDir()+"/prog" {
		t.Errorf("again: %q, %v", exe, err)
	}
	r.Settle()
	if n := calls.Load(); n != 1 {
		t.Errorf("installed %d times, want once", n)
	}
	out := log.String()
	if strings.Count(out, "[control-plane] Installing into "+p.BinDir()) != 1 || strings.Count(out, "[v1] copied") != 1 ||
		!strings.Contains(out, "[v1] the install of the component program took ") {
		t.Errorf("log:\n%s", out)
	}

	// Settle alone: the install's lines and its error are not lost, and it waited.
	log.Reset()
	bad := &Run{Paths: paths.MustUnder(t.TempDir() + "/bad"), Log: &log, install: install}
	Prepare(Local{}, bad)
	bad.Settle()
	if _, err := componentProgram(bad); err == nil || err.Error() != "install failed" {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(log.String(), "[control-plane] Installing into ") {
		t.Errorf("log: %q", log.String())
	}

	// A dry run prepares nothing.
	dry := &Run{Paths: p, Log: &log, Files: fsutil.NewDryRun(&log), install: install}
	Prepare(Local{}, dry)
	dry.Settle()
	if dry.program != nil || calls.Load() != 2 {
		t.Errorf("a dry run prepared an install (%d calls)", calls.Load())
	}

	// Another bin dir than the one prepared: installed there, now.
	moved := &Run{Paths: p, Log: io.Discard, install: install}
	Prepare(Local{}, moved)
	moved.Paths = paths.MustUnder(t.TempDir())
	if exe, err := componentProgram(moved); err != nil || exe != moved.Paths.BinDir()+"/prog" {
		t.Errorf("moved root: %q, %v", exe, err)
	}
	moved.Settle()
}
