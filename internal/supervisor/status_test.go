package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
)

type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time                         { return c.now }
func (c fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// golden compares got with testdata/supervisor/name, rewriting it under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "supervisor", name)
	golden.Check(t, path, []byte(got))
}

func TestStatus(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	f := newFakeProc(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	spec := Spec{Components: []ComponentSpec{
		{Name: "etcd", HealthURL: "http://etcd/health"},
		{Name: "kube-apiserver", HealthURL: "https://apiserver/readyz"},
		{Name: "kube-controller-manager", HealthURL: "https://kcm/healthz"},
		{Name: "kube-scheduler"},
	}}
	if err := WriteSpec(fsutil.NewDisk(nil), p, spec); err != nil {
		t.Fatal(err)
	}
	f.add(100, 'S', "/usr/bin/kubestrap", "supervise", "--root-dir", p.Root())
	f.add(101, 'S', p.ComponentBinary("etcd"))
	f.add(102, 'S', p.ComponentBinary("kube-apiserver"))
	f.add(104, 'S', p.ComponentBinary("kube-scheduler"))
	writeTestPid(t, p, "supervisor", 100)
	doc := statusDoc{
		Supervisor: supervisorRecord{PID: 100, StartedAt: now.Add(-26 * time.Hour)},
		Components: []componentRecord{
			{Name: "etcd", State: StateRunning, PID: 101, StartedAt: now.Add(-26 * time.Hour)},
			{Name: "kube-apiserver", State: StateRunning, PID: 102, StartedAt: now.Add(-75 * time.Second), Restarts: 2, LastExit: "signal: killed"},
			{Name: "kube-controller-manager", State: StateBackoff, Restarts: 5, LastExit: "exit status 255"},
			{Name: "kube-scheduler", State: StateRunning, PID: 104, StartedAt: now.Add(-3*time.Hour - 7*time.Minute)},
		},
	}
	data, _ := json.Marshal(doc)
	os.WriteFile(statusFile(p), data, 0o644)

	var mu sync.Mutex
	var asked []string
	health := func(ctx context.Context, url string) error {
		mu.Lock()
		asked = append(asked, url)
		mu.Unlock()
		if strings.Contains(url, "apiserver") {
			return errors.New("health check https://apiserver/readyz: 500 Internal Server Error: [-]etcd failed")
		}
		return nil
	}
	h := f.host()
	h.Clock = fixedClock{now}
	r, err := h.Status(p, health)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(asked)
	if want := []string{"http://etcd/health", "https://apiserver/readyz"}; !slices.Equal(asked, want) {
		t.Errorf("health asked of %v, want only the running components with a URL %v", asked, want)
	}
	if r.Running() || r.Healthy() {
		t.Errorf("Running() = %v, Healthy() = %v with the controller-manager down; want false", r.Running(), r.Healthy())
	}
	wantProblems := []string{
		"kube-apiserver is unhealthy: health check https://apiserver/readyz: 500 Internal Server Error: [-]etcd failed",
		"kube-controller-manager is not running",
	}
	if got := r.Problems(); !slices.Equal(got, wantProblems) {
		t.Errorf("Problems() = %q\nwant %q", got, wantProblems)
	}

	if r.Mode != "" {
		t.Errorf("Mode = %q: the run mode that reports the status names itself", r.Mode)
	}
	r.Mode = "local" // as runmode.Local.Status does; the golden files show it
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "status-table.golden", strings.ReplaceAll(table.String(), p.Root(), "<root>"))
	js, _ := json.MarshalIndent(r, "", "  ")
	checkGolden(t, "status.json.golden", strings.ReplaceAll(string(js), p.Root(), "<root>")+"\n")
}

func TestStatusAfterSupervisorDied(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	f := newFakeProc(t)
	if err := WriteSpec(fsutil.NewDisk(nil), p, Spec{Components: []ComponentSpec{{Name: "etcd", HealthURL: "http://etcd/health"}}}); err != nil {
		t.Fatal(err)
	}
	// A supervisor killed with SIGKILL leaves its files; its pids may belong to others now.
	writeTestPid(t, p, "supervisor", 100)
	writeTestPid(t, p, "etcd", 101)
	f.add(101, 'S', "/bin/bash")
	data, _ := json.Marshal(statusDoc{Supervisor: supervisorRecord{PID: 100}, Components: []componentRecord{{Name: "etcd", State: StateRunning, PID: 101, Restarts: 3}}})
	os.WriteFile(statusFile(p), data, 0o644)

	r, err := f.host().Status(p, func(context.Context, string) error { t.Error("health checked"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Root: p.Root(), Components: []ComponentStatus{{Name: "etcd", State: StateStopped, HealthURL: "http://etcd/health"}}}
	if got, want := fmtJSON(r), fmtJSON(want); got != want {
		t.Errorf("Status = %s\nwant %s", got, want)
	}
	if got := r.Problems(); !slices.Equal(got, []string{"the supervisor is not running", "etcd is not running"}) {
		t.Errorf("Problems() = %q", got)
	}
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestStatusNotStarted(t *testing.T) {
	t.Parallel()
	_, err := Status(paths.MustUnder(t.TempDir()), nil)
	if !errors.Is(err, ErrNotStarted) {
		t.Errorf("Status of an empty root: %v, want ErrNotStarted", err)
	}
}

func TestFormatUptime(t *testing.T) {
	t.Parallel()
	for secs, want := range map[int64]string{0: "0s", 59: "59s", 60: "1m0s", 3599: "59m59s", 3600: "1h0m", 86399: "23h59m", 86400: "1d0h", 400000: "4d15h"} {
		if got := formatUptime(secs); got != want {
			t.Errorf("formatUptime(%d) = %q, want %q", secs, got, want)
		}
	}
}
