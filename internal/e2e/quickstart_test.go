package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// writeAutoConfig is writeConfig without a mode: the run mode is left to auto, as in the README's
// quick start. Only the ports move, so that the test cannot collide with a control plane on the
// default ports.
func writeAutoConfig(t *testing.T, dir string, offset int) string {
	t.Helper()
	path := writeConfig(t, dir, offset)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("\nmode: local\n")) {
		t.Fatalf("writeConfig's output changed; no mode line to remove:\n%s", b)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte("\nmode: local\n"), []byte("\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// systemdNamespace is a PID and mount namespace whose PID 1 is named "systemd" (a copy of a shell)
// and has /run/systemd/system on a private tmpfs over /run: to kubestrap, a host that systemd
// runs. The machine's own /run is never touched.
type systemdNamespace struct {
	t       *testing.T
	dir     string // working directory inside and outside
	unshare *exec.Cmd
	pid1    int    // PID 1 of the namespace, as seen from outside
	pidNS   string // the namespace's /proc/PID/ns/pid link, e.g. "pid:[4026532301]"
}

func startSystemdNamespace(t *testing.T, dir string) *systemdNamespace {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	shell, err := filepath.EvalSymlinks(sh)
	if err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(dir, "systemd")
	copyFile(t, shell, init, 0o755)
	ready := filepath.Join(dir, "namespace-ready")
	// PID 1 stays a shell (so /proc/1/comm stays "systemd") and lives until it is killed from
	// outside: a namespace's init ignores signals it has no handler for, and its death kills
	// everything in the namespace, the detached supervisor included.
	script := `mount -t tmpfs -o mode=0755 kubestrap-e2e-run /run && mkdir -p /run/systemd/system && echo ok > "$1" || exit 1
while :; do sleep 3600; done`
	ns := &systemdNamespace{t: t, dir: dir}
	// --fork makes the shell PID 1 of the new PID namespace; --mount-proc gives it its own /proc;
	// unshare makes the new mount namespace's propagation private, so the tmpfs on /run stays in
	// it; --kill-child takes the namespace down if unshare dies.
	ns.unshare = exec.Command("unshare", "--pid", "--mount", "--fork", "--mount-proc", "--kill-child", init, "-c", script, "systemd", ready)
	ns.unshare.Dir = dir
	var out bytes.Buffer
	ns.unshare.Stdout, ns.unshare.Stderr = &out, &out
	if err := ns.unshare.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(ns.destroy)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the namespace did not get ready within a minute:\n%s", out.String())
		}
	}
	// The namespace's PID 1 is unshare's only child.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", ns.unshare.Process.Pid, ns.unshare.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if ns.pid1, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		t.Fatalf("children of unshare: %q", b)
	}
	if ns.pidNS, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", ns.pid1)); err != nil {
		t.Fatal(err)
	}
	if own, _ := os.Readlink("/proc/self/ns/pid"); own == ns.pidNS {
		t.Fatalf("PID 1 of the namespace (pid %d) is in the test's own PID namespace", ns.pid1)
	}
	return ns
}

// run runs a command in the namespace (nsenter forks it into the PID namespace), in ns.dir.
func (ns *systemdNamespace) run(name string, args ...string) result {
	ns.t.Helper()
	// Entering the mount namespace resets the working directory to its root; a shell changes
	// into ns.dir first (the README's commands use ./demo).
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(ns.pid1), "--pid", "--mount", "--",
		"sh", "-c", `cd "$1" && shift && exec "$@"`, "sh", ns.dir, name}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		ns.t.Fatalf("nsenter %s %s: %v", name, strings.Join(args, " "), err)
	}
	return r
}

// destroy kills the namespace's PID 1, which makes the kernel kill every process in the namespace,
// and checks that none is left.
func (ns *systemdNamespace) destroy() {
	if ns.pid1 != 0 {
		syscall.Kill(ns.pid1, syscall.SIGKILL)
	}
	ns.unshare.Process.Kill()
	ns.unshare.Wait()
	var left []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if left = append(processesUnder(ns.dir), ns.members()...); len(left) == 0 {
			return
		}
	}
	ns.t.Errorf("processes left after the namespace was destroyed: %v", left)
}

// members lists the processes (outside pids) that live in the namespace, whatever their command
// line: the supervisor, the components, PID 1's sleep.
func (ns *systemdNamespace) members() []string {
	if ns.pidNS == "" {
		return nil
	}
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if link, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && link == ns.pidNS {
			out = append(out, e.Name())
		}
	}
	return out
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestQuickStartWhereSystemdIsPID1 runs the README's quick start (init --root-dir ./demo without
// --mode, then kubectl and client-go, then reset) on a host whose PID 1 is systemd. auto used to
// pick systemd mode there, write units that nothing starts under a root dir, skip the API phases
// and exit 0, so the next kubectl failed. It must pick local mode because of the root dir, and the
// control plane must work.
func TestQuickStartWhereSystemdIsPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates a PID and mount namespace (unshare) to give it a PID 1 named systemd")
	}
	work := t.TempDir()
	demo := filepath.Join(work, "demo")
	if err := os.Mkdir(demo, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgFile := writeAutoConfig(t, work, 33700)
	_, hostErr := os.Stat("/run/systemd/system")

	ns := startSystemdNamespace(t, work)

	// Positive control: inside, PID 1 really is named systemd and /run/systemd/system exists, the
	// two signs kubestrap (and sd_booted) take for a host that systemd runs.
	if r := ns.run("cat", "/proc/1/comm"); r.code != 0 || strings.TrimSpace(r.stdout) != "systemd" {
		t.Fatalf("/proc/1/comm in the namespace: %q (exit %d, %s)", r.stdout, r.code, r.stderr)
	}
	if r := ns.run("test", "-d", "/run/systemd/system"); r.code != 0 {
		t.Fatalf("/run/systemd/system missing in the namespace: %s", r.stderr)
	}
	if _, err := os.Stat("/run/systemd/system"); (err == nil) != (hostErr == nil) {
		t.Fatalf("the machine's own /run changed: /run/systemd/system now %v, before %v", err, hostErr)
	}

	r := ns.run(binary, "init", "--root-dir", "./demo", "--config", cfgFile)
	if r.code != 0 {
		t.Fatalf("init: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if want := fmt.Sprintf(`[init] Using mode "local": the root dir %s is not /`, demo); !strings.Contains(r.stderr, want) {
		t.Errorf("init did not choose local mode for the root dir; want %q in:\n%s", want, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(demo, "etc/systemd/system/kube-apiserver.service")); err == nil {
		t.Error("init wrote systemd units in local mode")
	}

	// The detached supervisor and its components live in the namespace, kept alive by its PID 1.
	members := map[string]bool{}
	for _, pid := range ns.members() {
		members[pid] = true
	}
	inNamespace := 0
	for _, pid := range processesUnder(demo) {
		if members[pid] {
			inNamespace++
		}
	}
	if inNamespace < 5 {
		t.Errorf("%d processes of the root run in the namespace, want the supervisor and 4 components", inNamespace)
	}

	adminConf := filepath.Join(demo, "etc/kubernetes/admin.conf")
	rc, err := clientcmd.BuildConfigFromFlags("", adminConf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nss, err := kubernetes.NewForConfigOrDie(rc).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("client-go with admin.conf: %v", err)
	}
	names := map[string]bool{}
	for _, n := range nss.Items {
		names[n.Name] = true
	}
	if !names["kube-system"] || !names["default"] {
		t.Errorf("namespaces %v lack kube-system or default", names)
	}
	if _, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.Command("kubectl", "--kubeconfig", adminConf, "get", "ns", "kube-system", "-o", "name").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "namespace/kube-system" {
			t.Errorf("kubectl get ns: %v\n%s", err, out)
		}
	}
	if r := ns.run(binary, "status", "--root-dir", "./demo"); r.code != 0 {
		t.Errorf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	if r := ns.run(binary, "reset", "--root-dir", "./demo", "--force"); r.code != 0 {
		t.Errorf("reset: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if left := processesUnder(demo); len(left) > 0 {
		t.Errorf("processes of %s left after reset: %v", demo, left)
	}
	if entries, _ := os.ReadDir(demo); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("reset left %v in %s", names, demo)
	}
}
