package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests of systemd mode run kubestrap in throwaway hosts with systemd as PID 1, made by
// hack/systemd-host (see its header): a cached minimal Debian root filesystem under a per-host
// overlay, booted in namespaces of its own. This file is the tests' side of that harness.

// systemdEnv set to "require" turns the harness's missing prerequisites into failures instead of
// skips; .ci/run sets it, so CI cannot pass by silently skipping these tests.
const systemdEnv = "KUBESTRAP_E2E_SYSTEMD"

var harness struct {
	once   sync.Once
	script string // absolute path of hack/systemd-host
	reason string // why the harness cannot run here; empty when it can
}

// needSystemdHosts skips the test (or fails it, with KUBESTRAP_E2E_SYSTEMD=require) when this
// machine cannot make systemd hosts, and otherwise makes sure the root filesystem is built.
func needSystemdHosts(t *testing.T) string {
	t.Helper()
	harness.once.Do(func() {
		harness.script, harness.reason = prepareHarness()
	})
	if harness.reason != "" {
		if os.Getenv(systemdEnv) == "require" {
			t.Fatalf("systemd hosts are required (%s=require) but cannot run here: %s", systemdEnv, harness.reason)
		}
		t.Skipf("needs systemd hosts (hack/systemd-host): %s; set %s=require to make this a failure", harness.reason, systemdEnv)
	}
	return harness.script
}

func prepareHarness() (script, reason string) {
	if os.Getenv(systemdEnv) == "skip" {
		return "", systemdEnv + "=skip"
	}
	if os.Geteuid() != 0 {
		return "", "not root (the harness mounts filesystems and creates namespaces)"
	}
	_, file, _, _ := runtime.Caller(0)
	script = filepath.Join(filepath.Dir(file), "..", "..", "hack", "systemd-host")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Sprintf("the harness script: %v", err)
	}
	for _, c := range []string{"unshare", "nsenter", "ip", "pivot_root", "kubectl"} {
		if _, err := exec.LookPath(c); err != nil {
			return "", c + " is not on PATH"
		}
	}
	if b, _ := os.ReadFile("/proc/self/mounts"); !bytes.Contains(b, []byte(" cgroup2 ")) {
		return "", "no cgroup2 hierarchy is mounted"
	}
	sweepStaleHosts(script)
	// Builds the root filesystem when it is not cached yet (mmdebstrap, about 90 s).
	start := time.Now()
	out, err := exec.Command(script, "rootfs").CombinedOutput()
	if err != nil {
		return "", fmt.Sprintf("hack/systemd-host rootfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if d := time.Since(start); d > 5*time.Second {
		fmt.Printf("e2e: built the systemd hosts' root filesystem in %s\n", d.Round(time.Second))
	}
	return script, ""
}

// hostsDir is where hack/systemd-host keeps the hosts' state.
func hostsDir() string {
	if d := os.Getenv("KUBESTRAP_E2E_HOSTS"); d != "" {
		return d
	}
	return "/var/lib/kubestrap-e2e/hosts"
}

// sweepStaleHosts destroys hosts left by test runs that were killed before their cleanup ran:
// those named ks<pid>-... whose test process no longer exists. A live PID is left alone (it may
// be another test run's).
func sweepStaleHosts(script string) {
	entries, _ := os.ReadDir(hostsDir())
	for _, e := range entries {
		var pid int
		var role string
		if n, _ := fmt.Sscanf(strings.Replace(e.Name(), "-", " ", 1), "ks%d %s", &pid, &role); n != 2 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		if out, err := exec.Command(script, "destroy", e.Name()).CombinedOutput(); err != nil {
			fmt.Printf("e2e: destroying stale systemd host %s: %v\n%s", e.Name(), err, out)
		}
	}
}

// sdHost is one host with systemd as PID 1.
type sdHost struct {
	t      *testing.T
	script string
	name   string
}

// execResult is one command run in a host.
type execResult struct {
	stdout, stderr string
	code           int
}

// bootHost boots a new host named after the test run, in a network namespace of its own or, with
// netOf, in netOf's. It is destroyed (killed and its state deleted) when the test ends; a failed
// test first gets the tail of the host's journal.
func bootHost(t *testing.T, role string, netOf *sdHost) *sdHost {
	t.Helper()
	script := needSystemdHosts(t)
	h := &sdHost{t: t, script: script, name: fmt.Sprintf("ks%d-%s", os.Getpid(), role)}
	// A host of the same name is a leftover of a killed run with a recycled PID.
	exec.Command(script, "destroy", h.name).Run()
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := h.exec("journalctl", "--no-pager", "-n", "60").out(); err == nil {
				t.Logf("host %s: journal tail:\n%s", h.name, out)
			}
		}
		if out, err := exec.Command(script, "destroy", h.name).CombinedOutput(); err != nil {
			t.Errorf("destroy host %s: %v\n%s", h.name, err, out)
		}
	})
	h.boot(netOf)
	return h
}

// boot starts the host: the first time, or again after powerOff with the state it had.
func (h *sdHost) boot(netOf *sdHost) {
	h.t.Helper()
	args := []string{"boot", h.name}
	if netOf != nil {
		args = append(args, "--net-of", netOf.name)
	}
	start := time.Now()
	if out, err := exec.Command(h.script, args...).CombinedOutput(); err != nil {
		h.t.Fatalf("boot host %s: %v\n%s", h.name, err, out)
	}
	h.t.Logf("host %s booted in %s", h.name, time.Since(start).Round(10*time.Millisecond))
}

// powerOff runs systemctl poweroff in the host and waits until all of it has stopped.
func (h *sdHost) powerOff() {
	h.t.Helper()
	start := time.Now()
	if out, err := exec.Command(h.script, "poweroff", h.name).CombinedOutput(); err != nil {
		h.t.Fatalf("power off host %s: %v\n%s", h.name, err, out)
	}
	h.t.Logf("host %s powered off in %s", h.name, time.Since(start).Round(10*time.Millisecond))
}

// install copies a file of this machine into the host, owned by root.
func (h *sdHost) install(src, dst, mode string) {
	h.t.Helper()
	if out, err := exec.Command(h.script, "install", h.name, src, dst, mode).CombinedOutput(); err != nil {
		h.t.Fatalf("install %s into host %s: %v\n%s", dst, h.name, err, out)
	}
}

// writeFile writes data to a file in the host, owned by root.
func (h *sdHost) writeFile(dst string, data []byte, mode string) {
	h.t.Helper()
	src := filepath.Join(h.t.TempDir(), filepath.Base(dst))
	if err := os.WriteFile(src, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
	h.install(src, dst, mode)
}

// exec runs a command in the host (all its namespaces, a clean environment).
func (h *sdHost) exec(args ...string) execResult {
	h.t.Helper()
	cmd := exec.Command(h.script, append([]string{"exec", h.name}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := execResult{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("host %s: %s: %v", h.name, strings.Join(args, " "), err)
	}
	return r
}

func (r execResult) out() (string, error) {
	if r.code != 0 {
		return "", fmt.Errorf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}
	return strings.TrimSpace(r.stdout), nil
}

// mustExec runs a command in the host and returns its trimmed stdout; a non-zero exit fails the
// test with both outputs.
func (h *sdHost) mustExec(args ...string) string {
	h.t.Helper()
	r := h.exec(args...)
	if r.code != 0 {
		h.t.Fatalf("host %s: %s: exit %d\nstdout:\n%s\nstderr:\n%s", h.name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// unitProp is one property of a unit as `systemctl show` reports it.
func (h *sdHost) unitProp(unit, prop string) string {
	h.t.Helper()
	return h.mustExec("systemctl", "show", "--property", prop, "--value", unit)
}

// kubectl runs the host's kubectl with its admin.conf.
func (h *sdHost) kubectl(args ...string) execResult {
	h.t.Helper()
	return h.exec(append([]string{"kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "--request-timeout=10s"}, args...)...)
}

// installTools copies the kubestrap under test (root-owned, as a package would install it) and
// kubectl into the host.
func (h *sdHost) installTools() {
	h.t.Helper()
	h.install(binary, "/usr/local/bin/kubestrap", "0755")
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		h.t.Fatal(err)
	}
	h.install(kubectl, "/usr/local/bin/kubectl", "0755")
}

// eventually polls cond until it reports true or timeout passes, then fails with its last word.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, msg := cond()
		if ok {
			return time.Since(start)
		}
		last = msg
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
