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

// realnodeEnv set to "require" turns the real-node harness's missing prerequisites into failures
// instead of skips; .ci/run sets it, so CI cannot pass by silently skipping these tests.
const realnodeEnv = "KUBESTRAP_E2E_REALNODE"

var realnode struct {
	once   sync.Once
	script string // absolute path of hack/realnode
	bin    string // the harness's bin dir (containerd, runc, CNI plugins, kubelet, pause)
	static string // a static kubestrap binary, which the images need
	reason string // why the harness cannot run here; empty when it can
}

// needRealNode skips the test (or fails it, with KUBESTRAP_E2E_REALNODE=require) when this machine
// cannot run real node stacks, and otherwise returns the harness script, its bin dir and a static
// kubestrap binary.
func needRealNode(t *testing.T) (script, bin, static string) {
	t.Helper()
	realnode.once.Do(func() {
		realnode.script, realnode.bin, realnode.static, realnode.reason = prepareRealNode()
	})
	if realnode.reason != "" {
		if os.Getenv(realnodeEnv) == "require" {
			t.Fatalf("real nodes are required (%s=require) but cannot run here: %s", realnodeEnv, realnode.reason)
		}
		t.Skipf("needs real node stacks (hack/realnode): %s; set %s=require to make this a failure", realnode.reason, realnodeEnv)
	}
	return realnode.script, realnode.bin, realnode.static
}

func prepareRealNode() (script, bin, static, reason string) {
	if os.Getenv(realnodeEnv) == "skip" {
		return "", "", "", realnodeEnv + "=skip"
	}
	if os.Geteuid() != 0 {
		return "", "", "", "not root (the harness creates namespaces and runs containers)"
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	script = filepath.Join(repo, "hack", "realnode")
	out, err := exec.Command(script, "bindir").CombinedOutput()
	if err != nil {
		return "", "", "", fmt.Sprintf("the harness is not installed (run hack/realnode install): %s", strings.TrimSpace(string(out)))
	}
	bin = strings.TrimSpace(string(out))
	// The images run the binary with no libc in them: it must be static. KUBESTRAP_E2E_STATIC_BINARY
	// names one built beforehand (.ci/run does, outside the tests' timeout); otherwise it is built
	// once per run (cached by Go after the first time), in /tmp, which the hosts see.
	if static = os.Getenv("KUBESTRAP_E2E_STATIC_BINARY"); static != "" {
		if !filepath.IsAbs(static) {
			return "", "", "", "KUBESTRAP_E2E_STATIC_BINARY must be an absolute path (the hosts run it), not " + static
		}
		return script, bin, static, ""
	}
	// Beside the binary TestMain built, in the directory it removes at the end.
	static = filepath.Join(filepath.Dir(binary), "kubestrap-static")
	if os.Getenv("KUBESTRAP_E2E_BINARY") != "" {
		return "", "", "", "KUBESTRAP_E2E_BINARY is set: set KUBESTRAP_E2E_STATIC_BINARY to a static build too (CGO_ENABLED=0)"
	}
	build := exec.Command("go", "build", "-o", static, "github.com/kubestrap/kubestrap/cmd/kubestrap")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", "", fmt.Sprintf("building a static kubestrap: %v\n%s", err, out)
	}
	return script, bin, static, ""
}

// realHost is one running harness host.
type realHost struct {
	t      *testing.T
	script string
	name   string
}

// startRealHost starts a harness host (destroying a leftover of the same name first) and
// destroys it when the test ends, checking that it leaves no mount behind.
func startRealHost(t *testing.T, script, name, addr string) *realHost {
	t.Helper()
	h := &realHost{t: t, script: script, name: name}
	_ = exec.Command(script, "destroy", name).Run()
	h.run("start", name, "--addr", addr)
	t.Cleanup(func() {
		// KUBESTRAP_E2E_REALNODE_LOGS keeps the host's kubelet and containerd logs (for CI
		// artifacts, or to read the kubelet's timings).
		if dir := os.Getenv("KUBESTRAP_E2E_REALNODE_LOGS"); dir != "" {
			if out, err := exec.Command(script, "logs", name, filepath.Join(dir, t.Name())).CombinedOutput(); err != nil {
				t.Errorf("keeping the logs of host %s: %v\n%s", name, err, out)
			}
		}
		if out, err := exec.Command(script, "destroy", name).CombinedOutput(); err != nil {
			t.Errorf("destroying host %s: %v\n%s", name, err, out)
		}
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if bytes.Contains(mounts, []byte("/hosts/"+name+"/")) {
			t.Errorf("host %s left mounts behind:\n%s", name, mounts)
		}
	})
	return h
}

// run runs the harness with args and returns its stdout; a failure ends the test.
func (h *realHost) run(args ...string) string {
	h.t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(h.script, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		h.t.Fatalf("hack/realnode %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// exec runs a command inside the host and returns its combined output and error.
func (h *realHost) exec(args ...string) (string, error) {
	out, err := exec.Command(h.script, append([]string{"exec", h.name}, args...)...).CombinedOutput()
	return string(out), err
}

// mustExec is exec where a failure ends the test.
func (h *realHost) mustExec(args ...string) string {
	h.t.Helper()
	out, err := h.exec(args...)
	if err != nil {
		h.t.Fatalf("in host %s: %s: %v\n%s", h.name, strings.Join(args, " "), err, out)
	}
	return out
}

// waitFor polls check until it returns "" (done) or timeout passes; the last reason fails the test.
func waitFor(t *testing.T, what string, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := check()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s: %s", what, timeout, why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestStaticPodModeRealKubelet runs kubestrap's static-pod mode under a real kubelet and
// containerd, with images made from the binary itself and no registry: the four control-plane
// static pods and the CSR approver's run and are Ready, the node registers, show-apiserver-options agrees between manifest and
// process, and reset stops the pods through the runtime at once and removes every file.
//
// The host's init system is not systemd, so init cannot restart the kubelet: init runs with the
// phases that need a running control plane skipped, the harness then starts the kubelet (restarted
// whenever it exits, as kubeadm's unit does, with the flags from the files init wrote), and those
// phases are run one by one, as init's own message says to.
func TestStaticPodModeRealKubelet(t *testing.T) {
	script, bin, static := needRealNode(t)
	h := startRealHost(t, script, "e2e-cp", "10.214.0.20/24")
	initStart := time.Now()
	initRealControlPlane(t, h, bin, static)
	// All five, the CSR approver with the four components: its probes make the kubelet sync its
	// mirror Pod as soon as they report, as for the others. Without probes it waited for the
	// kubelet's periodic resync (syncFrequency 1 m plus up to half of it as jitter) and was Ready
	// 50-70 s after the four: the 30 s allowed after them tells the two apart with room for load.
	var fourReady time.Time
	waitFor(t, "the control-plane static pods and the CSR approver's Ready", 5*time.Minute, func() string {
		out, err := h.kubectl("get", "pods", "-n", "kube-system", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return out
		}
		pods := controlPlanePods(h.name)
		for _, p := range pods[:4] {
			if !strings.Contains(out, p+" Running True\n") {
				return "pods:\n" + out
			}
		}
		if fourReady.IsZero() {
			fourReady = time.Now()
			t.Logf("init to the four components' static pods Ready: %s", fourReady.Sub(initStart).Round(time.Millisecond))
		}
		if !strings.Contains(out, pods[4]+" Running True\n") {
			if since := time.Since(fourReady); since > 30*time.Second {
				t.Fatalf("the CSR approver's mirror Pod is not Running and Ready %s after the four components' (its probes should sync it with them):\n%s", since.Round(time.Second), out)
			}
			return "pods:\n" + out
		}
		return ""
	})
	t.Logf("init to the five static pods Ready (the four components and the CSR approver): %s", time.Since(initStart).Round(time.Millisecond))
	waitRealNodeReady(t, h, h.name)
	t.Logf("init to node Ready: %s", time.Since(initStart).Round(time.Millisecond))
	waitKubeProxy(t, h, h)

	// The containers are the images' entrypoints, and the process's flags are the manifest's.
	diff := h.mustExec(static, "show-apiserver-options", "--diff")
	if !strings.Contains(strings.ToLower(diff), "no differences") || !strings.Contains(diff, "process") || !strings.Contains(diff, "manifest") {
		t.Errorf("show-apiserver-options --diff:\n%s", diff)
	}

	// reset: the pods go through the runtime, at once, and every file goes. Under systemd reset
	// first stops the kubelet; here the harness does (else the kubelet would start kube-proxy's
	// pod again, which it still has from the API, after reset removed it).
	h.run("kubelet-stop", h.name)
	resetStart := time.Now()
	resetOut := h.mustExec(static, "reset", "--force")
	took := time.Since(resetStart)
	t.Logf("reset took %s", took.Round(time.Millisecond))
	for _, p := range controlPlanePods(h.name) {
		if !strings.Contains(resetOut, "[reset] Removed pod kube-system/"+p) {
			t.Errorf("reset did not remove pod %s through the runtime:\n%s", p, resetOut)
		}
	}
	if strings.Contains(resetOut, "Waiting up to") {
		t.Errorf("reset waited for the kubelet's grace period:\n%s", resetOut)
	}
	// Generous for a loaded machine; waiting out the grace period takes 30 s.
	if took > 20*time.Second {
		t.Errorf("reset took %s; the pods should stop within seconds through the runtime:\n%s", took, resetOut)
	}
	if tasks := h.mustExec("sh", "-c", "ctr -n k8s.io tasks ls -q 2>/dev/null"); strings.TrimSpace(tasks) != "" {
		t.Errorf("containers still running after reset: %s", tasks)
	}
	if ps := h.mustExec("ps", "-eo", "comm="); strings.Contains(ps, "kube-apiserver") || strings.Contains(ps, "etcd") ||
		strings.Contains(ps, "kube-scheduler") || strings.Contains(ps, "kube-controller") {
		t.Errorf("control-plane processes still running after reset:\n%s", ps)
	}
	// Directories kubeadm leaves (emptied) may stay; no file may.
	if left := h.mustExec("sh", "-c", "find /etc/kubernetes /var/lib/etcd /var/lib/kubelet -mindepth 1 -not -type d 2>/dev/null; true"); strings.TrimSpace(left) != "" {
		t.Errorf("files left after reset:\n%s", left)
	}
}

// controlPlanePods are the static pods of a control plane: the four components, then the approver.
func controlPlanePods(node string) []string {
	return []string{"etcd-" + node, "kube-apiserver-" + node, "kube-controller-manager-" + node, "kube-scheduler-" + node, "kubestrap-csr-approver-" + node}
}

// kubectl runs kubectl in the host with its admin.conf.
func (h *realHost) kubectl(args ...string) (string, error) {
	return h.exec(append([]string{"kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"}, args...)...)
}

// controlPlaneImages are the images init's images phase imports: the static pods', kube-proxy's
// (with the host's iptables) and the pause image the pod sandboxes run.
var controlPlaneImages = []string{"registry.k8s.io/etcd:3.7.0-0", "registry.k8s.io/kube-apiserver:v1.37.2",
	"registry.k8s.io/kube-controller-manager:v1.37.2", "registry.k8s.io/kube-scheduler:v1.37.2",
	"registry.k8s.io/kubestrap-csr-approver:v1.37.2", "registry.k8s.io/kube-proxy:v1.37.2", "registry.k8s.io/pause:3.10.2"}

// workerImages are the images a worker's join imports: kube-proxy's and the pause image.
var workerImages = []string{"registry.k8s.io/kube-proxy:v1.37.2", "registry.k8s.io/pause:3.10.2"}

// importDemoImage imports by hand into h's containerd the image the demo Pod runs (etcd's), with
// `kubestrap images import` under a configuration whose proxy is disabled and without a pause
// binary, so that neither of workerImages comes with it: those are the join's to import. It
// checks both, so a join that imports nothing cannot pass.
func importDemoImage(t *testing.T, h *realHost, static string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "images.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nproxy:\n  disabled: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	socket := strings.TrimSpace(h.run("socket", h.name))
	out, err := exec.Command(static, "images", "import", "--config", cfg, "--containerd-address", socket).CombinedOutput()
	if err != nil {
		t.Fatalf("images import: %v\n%s", err, out)
	}
	checkImages(t, h, []string{"registry.k8s.io/etcd:3.7.0-0"})
	have := h.mustExec("sh", "-c", "ctr -n k8s.io images ls -q 2>/dev/null")
	for _, ref := range workerImages {
		if strings.Contains(have, ref+"\n") {
			t.Fatalf("%s has %s before the join:\n%s", h.name, ref, have)
		}
	}
}

// checkImages fails the test unless h's containerd lists every image of want in the kubelet's
// namespace.
func checkImages(t *testing.T, h *realHost, want []string) {
	t.Helper()
	images := h.mustExec("sh", "-c", "ctr -n k8s.io images ls -q 2>/dev/null")
	for _, ref := range want {
		if !strings.Contains(images, ref+"\n") {
			t.Errorf("image %s is not in containerd's k8s.io namespace of %s:\n%s", ref, h.name, images)
		}
	}
}

// initRealControlPlane runs kubestrap init in static-pod mode in h, whose containerd has no image
// at all, and starts h's kubelet, and returns the configuration file. init's images phase builds
// the images from the binary and imports them (the pause image from the harness's static pause).
// The host's init system is not systemd, so init cannot restart the kubelet: init runs with the
// phases that need a running control plane skipped, the harness then starts the kubelet
// (restarted whenever it exits, as kubeadm's unit does, with the flags from the files init
// wrote), and those phases run one by one, as init's own message says to.
func initRealControlPlane(t *testing.T, h *realHost, bin, static string) string {
	t.Helper()
	// A real kubelet on this machine: cgroupfs (systemd is not PID 1) and cgroup v1 allowed.
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
# The hosts' files are on the machine's shared disk, whose free space other work moves around
# kubelet's default 15 % imagefs threshold: pods were evicted for "ephemeral-storage".
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
# The hosts are network namespaces of one machine: conntrack's table size is the machine's own
# (kube-proxy would write /sys/module/nf_conntrack/parameters/hashsize), so leave it and the
# timeouts alone, as kind does for the same reason.
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
---
apiVersion: kubestrap.io/v1alpha1
kind: KubestrapConfiguration
mode: static-pod
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if images := h.mustExec("sh", "-c", "ctr -n k8s.io images ls -q 2>/dev/null"); strings.TrimSpace(images) != "" {
		t.Fatalf("host %s starts with images already: %s", h.name, images)
	}
	start := time.Now()
	initOut := h.mustExec(static, "init", "--config", cfg, "--pause-binary", filepath.Join(bin, "pause"),
		"--skip-phases", "wait-control-plane,upload-config,bootstrap-token,show-join-command")
	t.Logf("init (images built and imported into the empty runtime, files written) returned after %s", time.Since(start).Round(time.Millisecond))
	for _, ref := range controlPlaneImages {
		if !strings.Contains(initOut, "[images] Imported "+ref+" (sha256:") {
			t.Errorf("init did not say it imported %s:\n%s", ref, initOut)
		}
	}
	checkImages(t, h, controlPlaneImages)
	// Again: every image is there, by name, so nothing is built or imported.
	again := h.mustExec(static, "init", "phase", "images", "--config", cfg)
	for _, ref := range controlPlaneImages {
		if !strings.Contains(again, "[images] Using existing image "+ref+"\n") {
			t.Errorf("init phase images, run again, did not keep %s:\n%s", ref, again)
		}
	}
	if strings.Contains(again, "Imported") {
		t.Errorf("init phase images, run again, imported:\n%s", again)
	}
	for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubestrap-csr-approver"} {
		h.mustExec("test", "-f", "/etc/kubernetes/manifests/"+c+".yaml")
	}
	h.run("kubelet", h.name)
	// The phases init skipped because the control plane was not running yet, in init's order
	// (CoreDNS is left out: it is not bundled, and no image of it is made here).
	// wait-control-plane waits for the approver's process too, and the csr-approver phase, once
	// its RBAC exists, for it to be ready: both through its health endpoint, in the pod.
	want := map[string]string{
		"wait-control-plane": "[wait-control-plane] kubestrap-csr-approver is healthy after",
		"csr-approver":       "[csr-approver] kubestrap-csr-approver is ready after",
	}
	for _, phase := range [][]string{{"wait-control-plane"}, {"upload-config", "all"}, {"mark-control-plane"}, {"bootstrap-token"}, {"csr-approver"}, {"addon", "kube-proxy"}} {
		out := h.mustExec(append(append([]string{static, "init", "phase"}, phase...), "--config", cfg)...)
		if w := want[phase[0]]; w != "" && !strings.Contains(out, w) {
			t.Errorf("init phase %s did not report %q:\n%s", phase[0], w, out)
		}
	}
	return cfg
}

// waitKubeProxy waits for the kube-proxy DaemonSet's pod on node to run, from the image with the
// host's iptables, and to have written its rules: iptables-save in the node shows its chains.
func waitKubeProxy(t *testing.T, cp, h *realHost) {
	t.Helper()
	node := h.name
	start := time.Now()
	waitFor(t, "kube-proxy Running on "+node, 3*time.Minute, func() string {
		out, err := cp.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-proxy", "--field-selector", "spec.nodeName="+node,
			"-o", `jsonpath={range .items[*]}{.status.phase} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}{"\n"}{end}`)
		if err != nil || !strings.HasPrefix(out, "Running true ") {
			return out
		}
		return ""
	})
	t.Logf("kube-proxy on %s Running after %s", node, time.Since(start).Round(time.Millisecond))
	waitFor(t, "kube-proxy's chains in "+node+"'s nat table", 2*time.Minute, func() string {
		out, err := h.exec("iptables-save", "-t", "nat")
		if err != nil || !strings.Contains(out, ":KUBE-SERVICES") {
			return out
		}
		return ""
	})
}

func waitRealNodeReady(t *testing.T, cp *realHost, node string) {
	t.Helper()
	waitFor(t, "node "+node+" Ready", 3*time.Minute, func() string {
		out, err := cp.kubectl("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil || out != "True" {
			return out
		}
		return ""
	})
}

// TestRealWorkerRunsPod joins a second harness host with the printed join command, which imports
// the worker's pause image and kube-proxy's into its empty runtime, and runs a Pod on it from an
// image made here (the etcd image, which is the kubestrap binary): the Pod runs with
// an address from the worker's bridge network, and kubectl logs and exec reach it through the
// worker's kubelet.
func TestRealWorkerRunsPod(t *testing.T) {
	script, bin, static := needRealNode(t)
	cp := startRealHost(t, script, "e2e-cp2", "10.214.0.21/24")
	w := startRealHost(t, script, "e2e-w", "10.214.0.22/24")
	// The worker's own pod network (the harness's bridge CNI, per host). Only the demo Pod's image
	// is imported by hand; the join imports the pause image and kube-proxy's.
	importDemoImage(t, w, static)
	initRealControlPlane(t, cp, bin, static)
	// stdout only: progress goes to stderr.
	join := strings.Fields(cp.mustExec("sh", "-c", static+" token create --print-join-command 2>/dev/null"))
	if len(join) < 2 || join[0] != "kubestrap" || join[1] != "join" {
		t.Fatalf("token create --print-join-command printed %q", join)
	}
	w.run("kubelet", w.name)
	joinStart := time.Now()
	joinOut := w.mustExec(append(append([]string{static}, join[1:]...), "--pause-binary", filepath.Join(bin, "pause"))...)
	t.Logf("join (the pause image and kube-proxy's built and imported) returned after %s", time.Since(joinStart).Round(time.Millisecond))
	for _, ref := range workerImages {
		if !strings.Contains(joinOut, "[images] Imported "+ref+" (sha256:") {
			t.Errorf("join did not say it imported %s:\n%s", ref, joinOut)
		}
	}
	checkImages(t, w, workerImages)
	waitRealNodeReady(t, cp, w.name)
	t.Logf("join to node Ready: %s", time.Since(joinStart).Round(time.Millisecond))

	pod := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(pod, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: demo
  labels:
    app: demo
spec:
  nodeName: e2e-w
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.7.0-0
    imagePullPolicy: Never
    command: ["etcd", "--data-dir=/etcd-data", "--listen-client-urls=http://0.0.0.0:2379", "--advertise-client-urls=http://127.0.0.1:2379"]
---
apiVersion: v1
kind: Service
metadata:
  name: demo
spec:
  selector:
    app: demo
  ports:
  - port: 80
    targetPort: 2379
`), 0o644); err != nil {
		t.Fatal(err)
	}
	podStart := time.Now()
	if out, err := cp.kubectl("apply", "-f", pod); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	var ip string
	waitFor(t, "pod demo Running on e2e-w", 3*time.Minute, func() string {
		out, err := cp.kubectl("get", "pod", "demo", "-o", `jsonpath={.status.phase} {.spec.nodeName} {.status.podIP}`)
		f := strings.Fields(out)
		if err != nil || len(f) != 3 || f[0] != "Running" || f[1] != "e2e-w" {
			return out
		}
		ip = f[2]
		return ""
	})
	t.Logf("pod created to Running: %s; join to the first Pod Running: %s", time.Since(podStart).Round(time.Millisecond), time.Since(joinStart).Round(time.Millisecond))
	if !strings.HasPrefix(ip, "10.215.0.") {
		t.Errorf("pod IP %q is not from the worker's bridge network 10.215.0.0/24", ip)
	}
	// logs and exec go from the API server to the worker's kubelet.
	waitFor(t, "kubectl logs demo", time.Minute, func() string {
		out, err := cp.kubectl("logs", "demo")
		if err != nil || !strings.Contains(out, "etcd") {
			return out
		}
		return ""
	})
	out, err := cp.kubectl("exec", "demo", "--", "kubestrap", "version")
	if err != nil || !strings.Contains(out, "etcd v3.7") {
		t.Errorf("kubectl exec demo -- kubestrap version: %v\n%s", err, out)
	}

	// The Service's ClusterIP, from the worker, reaches the Pod through kube-proxy's rules: no
	// address of the Pod is named here.
	waitKubeProxy(t, cp, w)
	clusterIP := strings.TrimSpace(mustKubectl(t, cp, "get", "service", "demo", "-o", "jsonpath={.spec.clusterIP}"))
	if clusterIP == "" || strings.HasPrefix(clusterIP, "10.215.") {
		t.Fatalf("service demo has ClusterIP %q", clusterIP)
	}
	svcStart := time.Now()
	waitFor(t, "http://"+clusterIP+"/version from e2e-w", 2*time.Minute, func() string {
		out, err := w.exec("curl", "-sS", "--max-time", "5", "http://"+clusterIP+"/version")
		if err != nil || !strings.Contains(out, `"etcdserver":"3.7`) {
			return out
		}
		return ""
	})
	t.Logf("ClusterIP %s answered (Pod %s) %s after kube-proxy ran", clusterIP, ip, time.Since(svcStart).Round(time.Millisecond))
	if rules := w.mustExec("iptables-save", "-t", "nat"); !strings.Contains(rules, "KUBE-SVC-") || !strings.Contains(rules, clusterIP) {
		t.Errorf("the worker's nat table has no kube-proxy rule for %s:\n%s", clusterIP, rules)
	}
}

// mustKubectl is kubectl in the host where a failure ends the test.
func mustKubectl(t *testing.T, h *realHost, args ...string) string {
	t.Helper()
	out, err := h.kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
