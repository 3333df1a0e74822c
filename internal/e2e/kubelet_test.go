package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubestrap/kubestrap/internal/kubeconfig"
)

var kubemark struct {
	once sync.Once
	path string
	err  error
}

// hollowKubeletBinary builds the hollow kubelet (kubemark) once per test run.
func hollowKubeletBinary(t *testing.T) string {
	t.Helper()
	kubemark.once.Do(func() {
		kubemark.path = filepath.Join(filepath.Dir(binary), "kubemark")
		if _, err := os.Stat(kubemark.path); err == nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", kubemark.path, "k8s.io/kubernetes/cmd/kubemark").CombinedOutput(); err != nil {
			kubemark.err = fmt.Errorf("build the hollow kubelet: %v\n%s", err, out)
		}
	})
	if kubemark.err != nil {
		t.Fatal(kubemark.err)
	}
	return kubemark.path
}

// TestHollowKubelet makes a real kubelet use what join wrote. The hollow kubelet of
// k8s.io/kubernetes/cmd/kubemark is the upstream kubelet code over a fake container runtime; with the
// worker's kubelet.conf it registers Node worker-1, which turns Ready, and a Pod created on the
// control plane is bound to it by the bundled scheduler and reported Running. A second hollow
// kubelet starts from a bootstrap kubeconfig alone and runs the kubelet's own TLS bootstrap against
// kubestrap's RBAC and CSR auto-approval.
func TestHollowKubelet(t *testing.T) {
	kubemark := hollowKubeletBinary(t)
	root, worker := t.TempDir(), t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), 30000)
	t.Cleanup(func() { stopAndCheck(t, root) })
	mustRun(t, "init", "--root-dir", root, "--config", cfgFile)
	line := strings.TrimSpace(mustRun(t, "token", "create", "--root-dir", root, "--print-join-command").stdout)
	words := strings.Fields(line)
	mustRun(t, append(words[1:], "--root-dir", worker, "--node-name", "worker-1")...)

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	startHollowKubelet(t, kubemark, "worker-1", 31250,
		"--kubeconfig="+filepath.Join(worker, "etc/kubernetes/kubelet.conf"))
	waitNodeReady(ctx, t, client, "worker-1")

	pod, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pause"},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kubernetes.io/hostname": "worker-1"},
			Containers:   []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10.2"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		pod, err = client.CoreV1().Pods("default").Get(ctx, "pause", metav1.GetOptions{})
		if err == nil && pod.Status.Phase == corev1.PodRunning {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("pod not Running: %v %+v", err, pod.Status)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if pod.Spec.NodeName != "worker-1" {
		t.Errorf("pod bound to %q, want worker-1", pod.Spec.NodeName)
	}
	t.Logf("pod Running on %s %s after creation", pod.Spec.NodeName, time.Since(start).Round(100*time.Millisecond))

	t.Run("kubelet TLS bootstrap", func(t *testing.T) {
		token := strings.TrimSpace(mustRun(t, "token", "create", "--root-dir", root).stdout)
		caPEM, err := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		boot := filepath.Join(dir, "bootstrap-kubelet.conf")
		if err := clientcmd.WriteToFile(*kubeconfig.TokenConfig(rc.Host, caPEM, "kubernetes", "tls-bootstrap-token-user", token), boot); err != nil {
			t.Fatal(err)
		}
		startHollowKubelet(t, kubemark, "worker-2", 31252,
			"--bootstrap-kubeconfig="+boot, "--kubeconfig="+filepath.Join(dir, "kubelet.conf"), "--cert-dir="+filepath.Join(dir, "pki"))
		waitNodeReady(ctx, t, client, "worker-2")
	})
}

func startHollowKubelet(t *testing.T, kubemark, name string, port int, args ...string) {
	t.Helper()
	certDir := t.TempDir()
	args = append([]string{"--morph=kubelet", "--name=" + name, "--use-host-image-service=false",
		fmt.Sprintf("--kubelet-port=%d", port), "--kubelet-read-only-port=0", "--cert-dir=" + certDir}, args...)
	cmd := exec.Command(kubemark, args...)
	logFile, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			t.Logf("hollow kubelet %s log tail:\n%s", name, out)
		}
	})
}

func waitNodeReady(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	start := time.Now()
	for {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					t.Logf("node %s Ready %s after its kubelet started", name, time.Since(start).Round(100*time.Millisecond))
					return
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("node %s did not become Ready: %v", name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
