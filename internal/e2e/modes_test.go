package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/supervisor"
)

var controlPlaneNames = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// TestThreeModesOneCommandLine writes the static-pod manifests and the systemd units for the same
// configuration and root as a running local-mode control plane, and checks that the three carry the
// same flags in the same order, that the bundled apiserver accepts the manifests, and that
// show-apiserver-options sees every source agree (issues 4 and 5).
func TestThreeModesOneCommandLine(t *testing.T) {
	root := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), 27000)
	t.Cleanup(func() { stopAndCheck(t, root) })
	mustRun(t, "init", "--root-dir", root, "--config", cfgFile)

	for _, mode := range []string{"static-pod", "systemd"} {
		mustRun(t, "init", "phase", "etcd", "local", "--mode", mode, "--root-dir", root, "--config", cfgFile)
		mustRun(t, "init", "phase", "control-plane", "all", "--mode", mode, "--root-dir", root, "--config", cfgFile)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Pod admission needs kube-system's default ServiceAccount, which the controller-manager creates
	// a moment after start.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err = client.CoreV1().ServiceAccounts(metav1.NamespaceSystem).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
	}
	// The CSR approver, kubestrap's own component, is held to the same rule.
	for _, name := range append(slices.Clone(controlPlaneNames), "kubestrap-csr-approver") {
		pod := readManifest(t, root, name)
		manifestArgs := pod.Spec.Containers[0].Command
		if manifestArgs[0] != name {
			t.Errorf("%s manifest command starts with %q", name, manifestArgs[0])
		}
		unitArgv := execStart(t, filepath.Join(root, "etc/systemd/system", name+".service"))
		procArgv := cmdline(t, readPid(t, root, name))
		if !reflect.DeepEqual(manifestArgs[1:], unitArgv[1:]) || !reflect.DeepEqual(manifestArgs[1:], procArgv[1:]) {
			t.Errorf("%s: flags differ between modes\nmanifest: %q\nunit:     %q\nprocess:  %q", name, manifestArgs[1:], unitArgv[1:], procArgv[1:])
		}
		if filepath.Base(unitArgv[0]) != name || filepath.Base(procArgv[0]) != name {
			t.Errorf("%s: unit runs %q, process is %q; want both named %s", name, unitArgv[0], procArgv[0], name)
		}

		// Server-side validation by the bundled apiserver itself.
		pod.Namespace = metav1.NamespaceSystem
		if _, err := client.CoreV1().Pods(metav1.NamespaceSystem).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("the apiserver rejects the %s manifest: %v", name, err)
		}
	}

	t.Run("show-apiserver-options", func(t *testing.T) {
		pid := readPid(t, root, "kube-apiserver")
		r := mustRun(t, "show-apiserver-options", "--root-dir", root, "-o", "args")
		if want := strings.Join(cmdline(t, pid)[1:], "\n") + "\n"; r.stdout != want {
			t.Errorf("-o args differs from /proc/%d/cmdline:\n%s\nwant:\n%s", pid, r.stdout, want)
		}
		if r := run(t, "show-apiserver-options", "--root-dir", root, "--diff"); r.code != 0 {
			t.Errorf("--diff between process, manifest and unit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}

		r = mustRun(t, "show-apiserver-options", "--root-dir", root, "--source", "flagz", "-o", "json")
		var rep struct {
			Source string `json:"source"`
			Flags  []struct {
				Name, Value string
			} `json:"flags"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("flagz json: %v\n%s", err, r.stdout)
		}
		got := map[string]string{}
		for _, f := range rep.Flags {
			got[f.Name] = f.Value
		}
		if got["secure-port"] != "33443" || got["max-requests-inflight"] != "400" {
			t.Errorf("flagz: secure-port=%q max-requests-inflight=%q, want 33443 and the default 400", got["secure-port"], got["max-requests-inflight"])
		}

		// An edited manifest is a difference that --diff names.
		mpath := filepath.Join(root, "etc/kubernetes/manifests/kube-apiserver.yaml")
		data, err := os.ReadFile(mpath)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(mpath, []byte(strings.Replace(string(data), "--secure-port=33443", "--secure-port=34443", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		r = run(t, "show-apiserver-options", "--root-dir", root, "--diff")
		if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "secure-port") {
			t.Errorf("--diff after editing the manifest: exit %d, want 1 naming secure-port\n%s%s", r.code, r.stdout, r.stderr)
		}

		empty := t.TempDir()
		r = run(t, "show-apiserver-options", "--root-dir", empty)
		if r.code != 2 || !strings.Contains(r.stderr, "kube-apiserver.yaml") {
			t.Errorf("empty root: exit %d, want 2 and the places looked at\n%s", r.code, r.stderr)
		}
	})
}

// TestRunVerbatim starts a control plane from the manifests' command lines, then from the units'
// ExecStart lines, each run as is on the host with the bundled binary, and waits for /readyz: what a
// kubelet or systemd would run behaves like local mode.
func TestRunVerbatim(t *testing.T) {
	root := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), 28000)
	for _, phase := range [][]string{{"certs", "all"}, {"kubeconfig", "all"}} {
		mustRun(t, append(append([]string{"init", "phase"}, phase...), "--root-dir", root, "--config", cfgFile)...)
	}
	for _, mode := range []string{"static-pod", "systemd"} {
		mustRun(t, "init", "phase", "etcd", "local", "--mode", mode, "--root-dir", root, "--config", cfgFile)
		mustRun(t, "init", "phase", "control-plane", "all", "--mode", mode, "--root-dir", root, "--config", cfgFile)
	}
	health := map[string]string{
		"etcd":           "http://127.0.0.1:30381/readyz",
		"kube-apiserver": "https://127.0.0.1:34443/readyz",
	}
	for _, source := range []string{"manifest", "unit"} {
		t.Run(source, func(t *testing.T) {
			os.RemoveAll(filepath.Join(root, "var/lib/etcd"))
			var procs []*exec.Cmd
			defer func() {
				for i := len(procs) - 1; i >= 0; i-- {
					procs[i].Process.Signal(syscall.SIGTERM)
					procs[i].Wait()
				}
			}()
			for _, name := range []string{"etcd", "kube-apiserver"} {
				var argv []string
				if source == "manifest" {
					argv = readManifest(t, root, name).Spec.Containers[0].Command
					argv = append([]string{binary}, argv...) // "kubestrap etcd --flags..."
				} else {
					argv = execStart(t, filepath.Join(root, "etc/systemd/system", name+".service"))
				}
				cmd := exec.Command(argv[0], argv[1:]...)
				// A front kubestrap extracts its component program under the root, not under
				// the machine's /var/lib/kubestrap.
				cmd.Env = append(os.Environ(), "KUBESTRAP_ROOT_DIR="+root)
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				if err := cmd.Start(); err != nil {
					t.Fatalf("start %s from its %s: %v", name, source, err)
				}
				procs = append(procs, cmd)
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				err := supervisor.WaitHealthy(ctx, health[name], 100*time.Millisecond)
				cancel()
				if err != nil {
					t.Fatalf("%s started from its %s is not ready: %v", name, source, err)
				}
			}
		})
	}
}

func readManifest(t *testing.T, root, name string) *corev1.Pod {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "etc/kubernetes/manifests", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := yaml.UnmarshalStrict(data, pod); err != nil {
		t.Fatalf("%s manifest does not decode into a v1.Pod: %v", name, err)
	}
	return pod
}

// execStart reads a unit's ExecStart as argv (kubestrap writes plain words, one flag per line).
func execStart(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("%s does not parse as a unit: %v", path, err)
	}
	for _, o := range opts {
		if o.Section == "Service" && o.Name == "ExecStart" {
			v := strings.ReplaceAll(o.Value, "\\\n", " ")
			var argv []string
			for _, w := range strings.Fields(v) {
				argv = append(argv, strings.Trim(w, `"`))
			}
			return argv
		}
	}
	t.Fatalf("%s has no ExecStart", path)
	return nil
}
