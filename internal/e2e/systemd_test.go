package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Tests of systemd mode and of the systemd-managed kubelet under a real systemd, each in
// throwaway hosts made by hack/systemd-host (systemdhost_test.go). They need root; .ci/run runs
// them with KUBESTRAP_E2E_SYSTEMD=require.

var controlPlaneUnits = []string{"etcd.service", "kube-apiserver.service", "kube-controller-manager.service", "kube-scheduler.service", "kubestrap-csr-approver.service"}

// TestSystemdControlPlane is a user's first run on a systemd host: plain `kubestrap init` picks
// systemd mode, the four units run the bundled components (and a fifth kubestrap's CSR approver),
// kubectl works, and
// show-apiserver-options reads the same options from the unit and from the process. systemd then
// keeps the control plane up: it restarts a kube-apiserver killed with SIGKILL (Restart=), and
// brings the control plane back by itself when the host boots again. reset leaves no unit, file
// or process of it.
func TestSystemdControlPlane(t *testing.T) {
	h := bootHost(t, "cp", nil)
	h.installTools()

	start := time.Now()
	r := h.exec("kubestrap", "init")
	if r.code != 0 {
		t.Fatalf("kubestrap init: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("kubestrap init under systemd returned after %s (init to ready)", time.Since(start).Round(100*time.Millisecond))
	if want := `[init] Using mode "systemd"`; !strings.Contains(r.stderr, want) {
		t.Errorf("init did not say %q:\n%s", want, r.stderr)
	}
	// init waits for the approver's unit like the others' (its process serving), then, once its
	// RBAC exists, for it to be ready.
	for _, want := range []string{"[wait-control-plane] kubestrap-csr-approver is healthy after", "[csr-approver] kubestrap-csr-approver is ready after"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("init did not say %q:\n%s", want, r.stderr)
		}
	}
	for _, u := range controlPlaneUnits {
		if got := h.unitProp(u, "ActiveState"); got != "active" {
			t.Errorf("%s: ActiveState %q, want active", u, got)
		}
		if got := h.unitProp(u, "UnitFileState"); got != "enabled" {
			t.Errorf("%s: UnitFileState %q, want enabled (the control plane must come back after a reboot)", u, got)
		}
	}
	// The unit runs the component through its symlink, so the process is named after it.
	apiPID := h.unitProp("kube-apiserver.service", "MainPID")
	if comm := h.mustExec("cat", "/proc/"+apiPID+"/comm"); comm != "kube-apiserver" {
		t.Errorf("kube-apiserver.service's main process is %q, want kube-apiserver", comm)
	}
	// comm holds 15 characters.
	approverPID := h.unitProp("kubestrap-csr-approver.service", "MainPID")
	if comm := h.mustExec("cat", "/proc/"+approverPID+"/comm"); comm != "kubestrap-csr-a" {
		t.Errorf("kubestrap-csr-approver.service's main process is %q, want kubestrap-csr-approver", comm)
	}

	// kubectl, with the admin.conf init wrote.
	if out, err := h.kubectl("get", "--raw", "/readyz").out(); err != nil || out != "ok" {
		t.Fatalf("kubectl get --raw /readyz: %q %v", out, err)
	}
	if out, err := h.kubectl("get", "--raw", "/version").out(); err != nil || !strings.Contains(out, `"gitVersion": "v1.37.2"`) {
		t.Errorf("kubectl get --raw /version: %v\n%s", err, out)
	}
	if _, err := h.kubectl("create", "configmap", "survivor", "--from-literal=k=v").out(); err != nil {
		t.Fatalf("kubectl create configmap: %v", err)
	}
	survivor := func() (bool, string) {
		out, err := h.kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}").out()
		return err == nil && out == "v", fmt.Sprintf("%q %v", out, err)
	}
	if ok, msg := survivor(); !ok {
		t.Fatalf("configmap survivor: %s", msg)
	}

	// The unit file and the running process carry the same options.
	fromUnit := h.mustExec("kubestrap", "show-apiserver-options", "--source", "systemd", "-o", "args")
	fromProcess := h.mustExec("kubestrap", "show-apiserver-options", "--source", "process", "-o", "args")
	if fromUnit != fromProcess {
		t.Errorf("show-apiserver-options: --source systemd and --source process differ\nsystemd:\n%s\nprocess:\n%s", fromUnit, fromProcess)
	}
	if !strings.Contains(fromUnit, "--advertise-address=10.213.0.10") || !strings.Contains(fromUnit, "--etcd-servers=") {
		t.Errorf("show-apiserver-options --source systemd lacks the advertise address or etcd servers:\n%s", fromUnit)
	}

	t.Run("kill -9 kube-apiserver", func(t *testing.T) {
		h := h.on(t)
		restarts := h.unitProp("kube-apiserver.service", "NRestarts")
		h.mustExec("kill", "-KILL", apiPID)
		took := eventually(t, 3*time.Minute, "systemd restarts kube-apiserver", func() (bool, string) {
			pid, state := h.unitProp("kube-apiserver.service", "MainPID"), h.unitProp("kube-apiserver.service", "ActiveState")
			if pid == apiPID || pid == "0" || state != "active" {
				return false, fmt.Sprintf("MainPID %s, ActiveState %s", pid, state)
			}
			out, err := h.kubectl("get", "--raw", "/readyz").out()
			return err == nil && out == "ok", fmt.Sprintf("/readyz: %q %v", out, err)
		})
		t.Logf("kube-apiserver ready again %s after SIGKILL", took.Round(100*time.Millisecond))
		if got := h.unitProp("kube-apiserver.service", "NRestarts"); got == restarts {
			t.Errorf("NRestarts still %s: the new kube-apiserver was not started by the unit's Restart=", got)
		}
		if ok, msg := survivor(); !ok {
			t.Errorf("configmap survivor after the restart: %s", msg)
		}
	})

	t.Run("power-off and boot", func(t *testing.T) {
		h := h.on(t)
		h.powerOff()
		h.boot(nil)
		took := eventually(t, 4*time.Minute, "the control plane comes back after boot", func() (bool, string) {
			for _, u := range controlPlaneUnits {
				if s := h.unitProp(u, "ActiveState"); s != "active" {
					return false, u + " " + s
				}
			}
			out, err := h.kubectl("get", "--raw", "/readyz").out()
			return err == nil && out == "ok", fmt.Sprintf("/readyz: %q %v", out, err)
		})
		t.Logf("control plane ready %s after the host booted", took.Round(100*time.Millisecond))
		if ok, msg := survivor(); !ok {
			t.Errorf("configmap survivor after the reboot: %s", msg)
		}
	})

	t.Run("reset", func(t *testing.T) {
		h := h.on(t)
		h.mustExec("kubestrap", "reset", "--force")
		for _, u := range controlPlaneUnits {
			if got := h.unitProp(u, "ActiveState"); got != "inactive" {
				t.Errorf("%s after reset: ActiveState %q, want inactive", u, got)
			}
			if got := h.unitProp(u, "LoadState"); got != "not-found" {
				t.Errorf("%s after reset: LoadState %q, want not-found (unit file removed)", u, got)
			}
		}
		if r := h.exec("pgrep", "-l", "^(etcd|kube-|kubestrap-csr)"); r.code != 1 {
			t.Errorf("processes left after reset (pgrep exit %d):\n%s", r.code, r.stdout)
		}
		assertHostClean(t, h)
	})
}

// assertHostClean fails when anything kubestrap writes in systemd mode is still in the host.
func assertHostClean(t *testing.T, h *sdHost) {
	t.Helper()
	r := h.exec("find", "/etc/kubernetes", "/var/lib/etcd", "/var/lib/kubelet", "/var/lib/kubestrap", "/etc/systemd/system",
		"(", "-name", "*kube*", "-o", "-name", "etcd*", "-o", "-path", "/var/lib/*/*", "-o", "-path", "/etc/kubernetes/*", ")",
		// An empty /etc/kubernetes may stay, as after kubeadm reset.
		"!", "-path", "/etc/kubernetes")
	if out := strings.TrimSpace(r.stdout); out != "" {
		t.Errorf("left in the host after reset:\n%s", out)
	}
}

// on returns h reporting to another (sub)test.
func (h *sdHost) on(t *testing.T) *sdHost { c := *h; c.t = t; return &c }

// standInKubelet is what the tests install as the host's /usr/bin/kubelet. It is NOT a kubelet:
// it runs the hollow kubelet (kubemark --morph=kubelet, the upstream kubelet code over a fake
// container runtime), keeping from the command line kubelet.service's drop-in builds only what
// kubemark understands. It lets the tests drive a kubelet unit the way kubestrap does on a real
// node — written by join or init, reloaded, enabled and (re)started over D-Bus, stopped by reset
// — without a container runtime. Running the real kubelet is the real-node harness's job.
const standInKubelet = `#!/bin/sh
# STAND-IN KUBELET for kubestrap's end-to-end tests (internal/e2e/systemd_test.go): runs the
# hollow kubelet, kubemark --morph=kubelet, with the kubeconfig flags of kubelet.service.
set -eu
name=$(hostname)
set -- "$@" --end
while [ "$1" != --end ]; do
  case $1 in
    --kubeconfig=*|--bootstrap-kubeconfig=*) set -- "$@" "$1" ;;
    --hostname-override=*) name=${1#*=} ;;
  esac
  shift
done
shift
exec /usr/local/lib/kubestrap-e2e/kubemark --morph=kubelet --name="$name" \
  --use-host-image-service=false --kubelet-read-only-port=0 --cert-dir=/var/lib/kubelet/pki "$@"
`

// installStandInKubelet puts the stand-in kubelet and the hollow kubelet into the host.
func (h *sdHost) installStandInKubelet() {
	h.t.Helper()
	h.install(hollowKubeletBinary(h.t), "/usr/local/lib/kubestrap-e2e/kubemark", "0755")
	h.writeFile("/usr/bin/kubelet", []byte(standInKubelet), "0755")
}

// TestSystemdJoinHandsOffToKubelet joins a second systemd host to a control plane in systemd mode
// through kubeadm's hand-off: join finds a kubelet, writes kubelet.service and its drop-in,
// reloads systemd and restarts the unit over D-Bus, and waits for the kubelet's own TLS bootstrap
// to write kubelet.conf. The kubelet here is the stand-in (the hollow kubelet), which registers
// the Node. reset on the worker then stops and disables its kubelet unit.
func TestSystemdJoinHandsOffToKubelet(t *testing.T) {
	cp := bootHost(t, "jcp", nil)
	cp.installTools()
	cp.mustExec("kubestrap", "init")
	// The worker shares the control plane's network namespace: its own PID, mount, UTS, IPC
	// and cgroup namespaces and its own systemd, but the same eth0 (10.213.0.10).
	w := bootHost(t, "jw", cp)
	w.installTools()
	w.installStandInKubelet()

	line := cp.mustExec("kubestrap", "token", "create", "--print-join-command")
	words := strings.Fields(line)
	if len(words) < 2 || words[0] != "kubestrap" || words[1] != "join" {
		t.Fatalf("join command: %q", line)
	}
	start := time.Now()
	r := w.exec(words...)
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", line, r.code, r.stdout, r.stderr)
	}
	t.Logf("join with the systemd kubelet hand-off took %s", time.Since(start).Round(100*time.Millisecond))
	if want := "Waiting for the kubelet to perform the TLS Bootstrap"; !strings.Contains(r.stderr, want) {
		t.Errorf("join did not hand the TLS bootstrap to the kubelet (no %q):\n%s", want, r.stderr)
	}
	if got := w.unitProp("kubelet.service", "ActiveState"); got != "active" {
		t.Errorf("kubelet.service: ActiveState %q, want active", got)
	}
	if got := w.unitProp("kubelet.service", "UnitFileState"); got != "enabled" {
		t.Errorf("kubelet.service: UnitFileState %q, want enabled", got)
	}
	if got := w.unitProp("kubelet.service", "DropInPaths"); !strings.Contains(got, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf") {
		t.Errorf("kubelet.service: DropInPaths %q lacks kubestrap's 10-kubeadm.conf", got)
	}
	if r := w.exec("test", "-e", "/etc/kubernetes/bootstrap-kubelet.conf"); r.code == 0 {
		t.Error("bootstrap-kubelet.conf is still there after join")
	}
	// The kubelet's own TLS bootstrap: kubelet.conf points at the certificate it rotated in.
	if kc := w.mustExec("cat", "/etc/kubernetes/kubelet.conf"); !strings.Contains(kc, "/var/lib/kubelet/pki/kubelet-client-current.pem") {
		t.Errorf("kubelet.conf does not use the kubelet's own client certificate:\n%s", kc)
	}
	node := w.mustExec("hostname")
	took := eventually(t, 3*time.Minute, "node "+node+" Ready", func() (bool, string) {
		out, err := cp.kubectl("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`).out()
		return err == nil && out == "True", fmt.Sprintf("%q %v", out, err)
	})
	t.Logf("node %s Ready %s after join returned", node, took.Round(100*time.Millisecond))

	r = w.exec("kubestrap", "reset", "--force")
	if r.code != 0 {
		t.Fatalf("reset on the worker: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got := w.unitProp("kubelet.service", "ActiveState"); got != "inactive" {
		t.Errorf("kubelet.service after reset: ActiveState %q, want inactive", got)
	}
	if got := w.unitProp("kubelet.service", "UnitFileState"); got == "enabled" {
		t.Errorf("kubelet.service after reset: still enabled")
	}
	if r := w.exec("pgrep", "-l", "kubemark"); r.code != 1 {
		t.Errorf("the kubelet still runs after reset (pgrep exit %d):\n%s", r.code, r.stdout)
	}
	// The control plane host is untouched by the worker's reset.
	if out, err := cp.kubectl("get", "--raw", "/readyz").out(); err != nil || out != "ok" {
		t.Errorf("control plane after the worker's reset: %q %v", out, err)
	}
}

// TestSystemdStaticPodKubeletRestart is static-pod mode's kubelet-start phase under a real
// systemd: it writes the kubelet's files, reloads systemd, enables kubelet.service and restarts it
// over D-Bus — a restart every time, since the kubelet reads its flags only at start. The kubelet
// is the stand-in (it cannot run the static pods; a real kubelet with a container runtime is the
// real-node harness's job), so init's later phases are not run here.
func TestSystemdStaticPodKubeletRestart(t *testing.T) {
	h := bootHost(t, "sp", nil)
	h.installTools()
	h.installStandInKubelet()
	h.mustExec("kubestrap", "init", "phase", "certs", "all", "--mode", "static-pod")
	h.mustExec("kubestrap", "init", "phase", "kubeconfig", "all", "--mode", "static-pod")

	kubeletUp := func(t *testing.T) (invocation, pid string) {
		t.Helper()
		var cmdline string
		// Active, and the stand-in script has exec'd the hollow kubelet.
		eventually(t, 2*time.Minute, "kubelet.service runs the hollow kubelet", func() (bool, string) {
			s := h.unitProp("kubelet.service", "ActiveState")
			pid = h.unitProp("kubelet.service", "MainPID")
			cmdline, _ = h.exec("cat", "/proc/"+pid+"/cmdline").out()
			return s == "active" && strings.Contains(cmdline, "--morph=kubelet"), fmt.Sprintf("%s, MainPID %s: %q", s, pid, cmdline)
		})
		// The flags from kubestrap's drop-in reached the kubelet's command line.
		for _, want := range []string{"--kubeconfig=/etc/kubernetes/kubelet.conf", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf"} {
			if !strings.Contains(cmdline, want) {
				t.Errorf("kubelet.service's process lacks %s: %q", want, cmdline)
			}
		}
		return h.unitProp("kubelet.service", "InvocationID"), pid
	}

	r := h.exec("kubestrap", "init", "phase", "kubelet-start", "--mode", "static-pod")
	if r.code != 0 {
		t.Fatalf("kubelet-start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "[kubelet-start] Restarting the kubelet") {
		t.Errorf("kubelet-start did not restart the kubelet:\n%s", r.stderr)
	}
	if got := h.unitProp("kubelet.service", "UnitFileState"); got != "enabled" {
		t.Errorf("kubelet.service: UnitFileState %q, want enabled", got)
	}
	if got := h.unitProp("kubelet.service", "DropInPaths"); !strings.Contains(got, "kubelet.service.d/10-kubeadm.conf") {
		t.Errorf("kubelet.service: DropInPaths %q lacks 10-kubeadm.conf", got)
	}
	inv1, pid1 := kubeletUp(t)
	restarts := h.unitProp("kubelet.service", "NRestarts")

	// Run again: the kubelet is restarted even though nothing changed.
	h.mustExec("kubestrap", "init", "phase", "kubelet-start", "--mode", "static-pod")
	inv2, pid2 := kubeletUp(t)
	if inv2 == inv1 || pid2 == pid1 {
		t.Errorf("kubelet.service was not restarted: invocation %s → %s, MainPID %s → %s", inv1, inv2, pid1, pid2)
	}
	if got := h.unitProp("kubelet.service", "NRestarts"); got != restarts {
		t.Errorf("kubelet.service NRestarts %s → %s: the stand-in kubelet crashed, so the new process proves nothing about kubestrap's restart", restarts, got)
	}
}
