package inspect

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/kubestrap/kubestrap/internal/paths"
)

// cluster is a root dir holding the fixture manifest and unit, and an empty /proc beside it.
type cluster struct {
	paths   paths.Paths
	procDir string
}

func newCluster(t *testing.T, withFiles bool) cluster {
	t.Helper()
	dir := t.TempDir()
	c := cluster{paths: paths.MustUnder(filepath.Join(dir, "root")), procDir: filepath.Join(dir, "proc")}
	for _, d := range []string{c.paths.Root(), c.procDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if withFiles {
		copyTree(t, filepath.Join(testdataDir, "root"), c.paths.Root())
	}
	return c
}

// startAPIServer adds a local-mode kube-apiserver process of this cluster to its /proc.
func (c cluster) startAPIServer(t *testing.T, pid int, args ...string) {
	t.Helper()
	argv := append([]string{c.paths.ComponentBinary(Component)}, args...)
	writeProc(t, c.procDir, fakeProc{pid, Component, argv})
}

func (c cluster) run(t *testing.T, o Options) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o.Paths, o.ProcDir, o.Out, o.Err = c.paths, c.procDir, &out, &errOut
	if o.Catalog == nil {
		o.Catalog = fakeCatalog
	}
	err = Run(context.Background(), o)
	return out.String(), errOut.String(), err
}

func TestRunNothingFound(t *testing.T) {
	t.Parallel()
	c := newCluster(t, false)
	// Another cluster's apiserver runs on this machine: it must not count.
	writeProc(t, c.procDir, fakeProc{77, Component, []string{"/elsewhere/kube-apiserver", "--client-ca-file=/elsewhere/ca.crt"}})
	for _, o := range []Options{{}, {Diff: true}, {Source: "manifest"}, {Source: "systemd"}, {Source: "process"}, {Source: "flagz"}} {
		_, _, err := c.run(t, o)
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.ExitCode() != 2 {
			t.Fatalf("%+v: err = %v, want NotFoundError", o, err)
		}
		msg := err.Error()
		switch {
		case o.Source == "" && !strings.Contains(msg, "running processes") || !strings.Contains(msg, "looked in"):
			t.Errorf("%+v: message does not list where it looked:\n%s", o, msg)
		case o.Source == "" && !o.Diff && !(strings.Contains(msg, c.paths.Manifest(Component)) && strings.Contains(msg, c.paths.SystemdUnit(UnitName))):
			t.Errorf("auto: message lacks the manifest or unit path:\n%s", msg)
		case o.Source == "" && !strings.Contains(msg, "1 kube-apiserver process(es) ignored"):
			t.Errorf("message does not mention the other cluster's process:\n%s", msg)
		}
	}
}

func TestRunAutoPrefersProcess(t *testing.T) {
	t.Parallel()
	c := newCluster(t, true)
	// auto: manifest first when nothing runs...
	out, errOut, err := c.run(t, Options{Output: OutputArgs})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "Using manifest") || out != strings.Join(fixtureArgs, "\n")+"\n" {
		t.Errorf("stderr %q stdout\n%s", errOut, out)
	}
	// ...then the process once one runs, with args in its own command-line order and spelling.
	args := append([]string{"--etcd-servers", "https://127.0.0.1:2379"}, fixtureArgs[:5]...)
	args = append(args, "--client-ca-file="+c.paths.CertDir("")+"/ca.crt", "--v=2", "--v=3")
	c.startAPIServer(t, 4321, args...)
	out, errOut, err = c.run(t, Options{Output: OutputArgs})
	if err != nil {
		t.Fatal(err)
	}
	want := "--etcd-servers=https://127.0.0.1:2379\n" + strings.Join(args[2:], "\n") + "\n"
	if !strings.Contains(errOut, "Using process 4321") || out != want {
		t.Errorf("stderr %q stdout\n%s\nwant\n%s", errOut, out, want)
	}
	// Without a manifest and a process, the unit.
	c2 := newCluster(t, true)
	os.Remove(c2.paths.Manifest(Component))
	_, errOut, err = c2.run(t, Options{})
	if err != nil || !strings.Contains(errOut, "Using unit") {
		t.Errorf("err %v stderr %q", err, errOut)
	}
}

func TestRunSeveralProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t, false)
	ca := "--client-ca-file=" + c.paths.CertDir("") + "/ca.crt"
	c.startAPIServer(t, 10, ca, "--secure-port=6443", "--v=2", "--x=1")
	c.startAPIServer(t, 11, ca, "--secure-port=7443")
	_, _, err := c.run(t, Options{})
	var mp *MultipleProcessesError
	if !errors.As(err, &mp) {
		t.Fatalf("err = %v, want MultipleProcessesError", err)
	}
	for _, want := range []string{"--pid", "10  " + ca + " --secure-port=6443 --v=2 ... (1 more)", "11  " + ca + " --secure-port=7443"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	out, _, err := c.run(t, Options{PID: 11, Output: OutputArgs})
	if err != nil || out != ca+"\n--secure-port=7443\n" {
		t.Errorf("--pid 11: %v\n%s", err, out)
	}
	_, _, err = c.run(t, Options{PID: 12})
	if !errors.As(err, new(*NotFoundError)) {
		t.Errorf("--pid 12: err = %v, want NotFoundError", err)
	}
}

func TestRunPermissionDenied(t *testing.T) {
	t.Parallel()
	// Running as root, file modes cannot make cmdline unreadable; the scanner's hook can.
	denied := func(pid int, file string) error {
		if file == "cmdline" {
			return &os.PathError{Op: "open", Path: "/proc/10/cmdline", Err: syscall.EACCES}
		}
		return nil
	}
	c := newCluster(t, true)
	c.startAPIServer(t, 10, "--secure-port=6443")
	for _, o := range []Options{{Source: "process"}, {PID: 10}} {
		o.readHook = denied
		_, _, err := c.run(t, o)
		var pe *PermissionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "process 10") || !strings.Contains(err.Error(), "sudo") {
			t.Errorf("%+v: err = %v, want a PermissionError suggesting sudo", o, err)
		}
	}
	// auto says so and goes on with the manifest.
	_, errOut, err := c.run(t, Options{readHook: denied})
	if err != nil || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, "Using manifest") {
		t.Errorf("auto: err %v stderr %q", err, errOut)
	}
	// With no other source, the permission problem is the answer.
	empty := newCluster(t, false)
	empty.startAPIServer(t, 10, "--secure-port=6443")
	_, _, err = empty.run(t, Options{readHook: denied})
	if !errors.As(err, new(*PermissionError)) {
		t.Errorf("auto, nothing else: err = %v, want PermissionError", err)
	}
}

func TestRunDiff(t *testing.T) {
	t.Parallel()
	c := newCluster(t, true)
	// The fixture manifest and unit agree (bare --allow-privileged equals =true, order aside).
	out, _, err := c.run(t, Options{Diff: true})
	if err != nil || !strings.Contains(out, "no differences: manifest, unit agree on all 9 flags") {
		t.Fatalf("err %v out %q", err, out)
	}
	// A process running the same flags agrees too.
	c.startAPIServer(t, 99, fixtureArgs...)
	out, _, err = c.run(t, Options{Diff: true})
	if err != nil || !strings.Contains(out, "process 99, manifest, unit agree") {
		t.Fatalf("err %v out %q", err, out)
	}
	// Edit the manifest's --secure-port (the process still runs the old one): exit 1 naming it.
	m := c.paths.Manifest(Component)
	b, _ := os.ReadFile(m)
	if err := os.WriteFile(m, bytes.Replace(b, []byte("--secure-port=6443"), []byte("--secure-port=7443"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = c.run(t, Options{Diff: true})
	var de *DiffError
	if !errors.As(err, &de) || de.ExitCode() != 1 {
		t.Fatalf("err = %v, want DiffError", err)
	}
	checkGolden(t, "diff.golden", []byte(out))
	if want := "secure-port (process 99: 6443, manifest: 7443, unit: 6443)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	// One source alone: nothing to compare, no failure.
	c2 := newCluster(t, true)
	os.Remove(c2.paths.Manifest(Component))
	_, errOut, err := c2.run(t, Options{Diff: true})
	if err != nil || !strings.Contains(errOut, "nothing to compare") {
		t.Errorf("err %v stderr %q", err, errOut)
	}
}

func TestDiffValues(t *testing.T) {
	t.Parallel()
	a := &Invocation{Source: SourceProcess, PID: 1}
	a.Flags, _ = ParseArgs([]string{"--v=1", "--v=2", "--a", "--same=x"}, nil, "")
	b := &Invocation{Source: "manifest"}
	b.Flags, _ = ParseArgs([]string{"--v=1", "--a=true", "--only-here=1", "--same=x"}, nil, "")
	got := Diff([]*Invocation{a, b})
	want := []Difference{{"only-here", []string{notSet, "1"}}, {"v", []string{"1 ; 2", "1"}}}
	if len(got) != len(want) || got[0].Name != want[0].Name || got[1].Values[0] != want[1].Values[0] || got[0].Values[0] != notSet {
		t.Errorf("Diff = %+v, want %+v", got, want)
	}
}

func TestRunModes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, true)
	// --all without a catalog cannot work; it says why.
	_, _, err := c.run(t, Options{All: true, Catalog: Catalog{}})
	if err != nil {
		t.Fatalf("--all with an (empty) catalog: %v", err)
	}
	var out, errOut bytes.Buffer
	err = Run(context.Background(), Options{Paths: c.paths, ProcDir: c.procDir, All: true, Out: &out, Err: &errOut})
	if err == nil || !strings.Contains(err.Error(), "catalog") {
		t.Errorf("--all without catalog: %v", err)
	}
	// --explain works without any source, saying so.
	empty := newCluster(t, false)
	stdout, _, err := empty.run(t, Options{Explain: []string{"secure-port"}})
	if err != nil || !strings.Contains(stdout, "current: unknown (no kube-apiserver found") || !strings.Contains(stdout, "default: 6443") {
		t.Errorf("explain without source: %v\n%s", err, stdout)
	}
	// --explain with a source shows the current value and where it came from.
	stdout, _, err = c.run(t, Options{Explain: []string{"secure-port"}, Source: "systemd"})
	if err != nil || !strings.Contains(stdout, "current: 6443 (unit EnvironmentFile /etc/default/kube-apiserver)") {
		t.Errorf("explain: %v\n%s", err, stdout)
	}
	// --all marks defaults.
	stdout, _, err = c.run(t, Options{All: true, Source: "manifest"})
	if err != nil || !strings.Contains(stdout, "default") || !strings.Contains(stdout, "HELP") {
		t.Errorf("--all: %v\n%s", err, stdout)
	}
	// A flag the catalog does not know is shown and marked, not an error.
	m := c.paths.Manifest(Component)
	b, _ := os.ReadFile(m)
	os.WriteFile(m, bytes.Replace(b, []byte("- --secure-port=6443"), []byte("- --secure-port=6443\n    - --made-up-flag=1"), 1), 0o644)
	stdout, _, err = c.run(t, Options{Source: "manifest"})
	if err != nil || !regexp.MustCompile(`(?m)^made-up-flag \(unknown\) +1 +manifest$`).MatchString(stdout) {
		t.Errorf("unknown flag: %v\n%s", err, stdout)
	}
}

func TestRunOptionErrors(t *testing.T) {
	t.Parallel()
	c := newCluster(t, true)
	for _, o := range []Options{
		{Source: "etcd"},
		{Output: "xml"},
		{PID: 3, Source: "manifest"},
		{Diff: true, All: true},
		{Diff: true, Source: "process"},
		{Explain: []string{"v"}, Output: OutputJSON},
		{All: true, Output: OutputArgs},
		{PID: -1},
	} {
		_, _, err := c.run(t, o)
		if !errors.As(err, new(*OptionError)) {
			t.Errorf("%+v: err = %v, want OptionError", o, err)
		}
	}
}

func TestScanRealProc(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/comm"); err != nil {
		t.Skip("no /proc")
	}
	res, err := ProcScanner{ProcDir: "/proc", Root: paths.MustUnder("/")}.Scan()
	if err != nil || res.Scanned == 0 {
		t.Errorf("scan of /proc: %v, %d processes", err, res.Scanned)
	}
}
