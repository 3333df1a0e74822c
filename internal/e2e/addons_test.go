package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// TestAddons runs what a kubeadm user expects after init and a join: CoreDNS and kube-proxy are
// installed, and their pods are scheduled on (hollow) nodes and reported Running; the control
// plane's own Node, once a kubelet registers it, is labelled and tainted by
// "init phase mark-control-plane"; and a re-run of the addon phases keeps a user's edits.
func TestAddons(t *testing.T) {
	kubemark := hollowKubeletBinary(t)
	root, worker, cpNode := t.TempDir(), t.TempDir(), t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), 32000)
	t.Cleanup(func() { stopAndCheck(t, root) })
	r := mustRun(t, "init", "--root-dir", root, "--config", cfgFile)
	for _, want := range []string{
		`[mark-control-plane] Skipped: mode "local" runs no kubelet on the control plane`,
		"[addons] Applied essential addon: CoreDNS",
		"[addons] Applied essential addon: kube-proxy",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("init's output lacks %q:\n%s", want, r.stderr)
		}
	}
	client := adminClient(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	join := strings.Fields(strings.TrimSpace(mustRun(t, "token", "create", "--root-dir", root, "--print-join-command").stdout))
	mustRun(t, append(join[1:], "--root-dir", worker, "--node-name", "worker-1")...)
	startHollowKubelet(t, kubemark, "worker-1", 32250, "--kubeconfig="+filepath.Join(worker, "etc/kubernetes/kubelet.conf"))
	waitNodeReady(ctx, t, client, "worker-1")

	start := time.Now()
	waitPodsRunning(ctx, t, client, "k8s-app=kube-dns", 2)
	waitPodsRunning(ctx, t, client, "k8s-app=kube-proxy", 1)
	t.Logf("CoreDNS and kube-proxy pods Running %s after worker-1 was Ready", time.Since(start).Round(100*time.Millisecond))
	svc, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("kube-dns at %s, want 10.96.0.10 (the kubelets' clusterDNS)", svc.Spec.ClusterIP)
	}

	t.Run("mark-control-plane on a registered Node", func(t *testing.T) {
		// A hollow kubelet with node credentials for the control plane's name stands in for the
		// kubelet static-pod mode runs there.
		join := strings.Fields(strings.TrimSpace(mustRun(t, "token", "create", "--root-dir", root, "--print-join-command").stdout))
		mustRun(t, append(join[1:], "--root-dir", cpNode, "--node-name", "e2e-node")...)
		startHollowKubelet(t, kubemark, "e2e-node", 32252, "--kubeconfig="+filepath.Join(cpNode, "etc/kubernetes/kubelet.conf"))
		waitNodeReady(ctx, t, client, "e2e-node")
		for i := 0; i < 2; i++ { // the second run must change nothing
			r := mustRun(t, "init", "phase", "mark-control-plane", "--root-dir", root, "--config", cfgFile)
			if !strings.Contains(r.stderr, "adding the taints [node-role.kubernetes.io/control-plane:NoSchedule]") {
				t.Errorf("output:\n%s", r.stderr)
			}
		}
		n, err := client.CoreV1().Nodes().Get(ctx, "e2e-node", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{"node-role.kubernetes.io/control-plane", "node.kubernetes.io/exclude-from-external-load-balancers"} {
			if v, ok := n.Labels[l]; !ok || v != "" {
				t.Errorf("label %s: %q %v", l, v, ok)
			}
		}
		var cp int
		for _, taint := range n.Spec.Taints {
			if taint.Key == "node-role.kubernetes.io/control-plane" && taint.Effect == corev1.TaintEffectNoSchedule {
				cp++
			}
		}
		if cp != 1 {
			t.Errorf("Node e2e-node has %d control-plane NoSchedule taints, want 1: %v", cp, n.Spec.Taints)
		}
	})

	t.Run("a re-run keeps the user's edits", func(t *testing.T) {
		cm, err := client.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		const corefile = ".:53 {\n    errors\n    forward . 192.0.2.53\n}\n"
		cm.Data["Corefile"] = corefile
		if _, err := client.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
		ds, err := client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ds.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}
		if _, err := client.AppsV1().DaemonSets("kube-system").Update(ctx, ds, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
		d, err := client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Spec.Replicas = ptr.To[int32](1)
		if _, err := client.AppsV1().Deployments("kube-system").Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-scale"}); err != nil {
			t.Fatal(err)
		}

		mustRun(t, "init", "phase", "addon", "all", "--root-dir", root, "--config", cfgFile)

		if cm, _ = client.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{}); cm.Data["Corefile"] != corefile {
			t.Errorf("the user's Corefile was replaced:\n%s", cm.Data["Corefile"])
		}
		ds, _ = client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
		if got := ds.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]; got.String() != "50m" {
			t.Errorf("kube-proxy's cpu request = %s, want the user's 50m", got.String())
		}
		d, _ = client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("CoreDNS replicas = %d, want the user's 1", ptr.Deref(d.Spec.Replicas, -1))
		}
		if got := d.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]; got.String() != "170Mi" {
			t.Errorf("CoreDNS memory limit = %s, want kubeadm's 170Mi kept", got.String())
		}
	})
}

// TestAddonsSkipped: --skip-phases addon/coredns leaves CoreDNS out and installs kube-proxy;
// dns.disabled keeps a later "init phase addon coredns" from installing it.
func TestAddonsSkipped(t *testing.T) {
	root := t.TempDir()
	dir := t.TempDir()
	cfgFile := writeConfig(t, dir, 33000)
	t.Cleanup(func() { stopAndCheck(t, root) })
	mustRun(t, "init", "--root-dir", root, "--config", cfgFile, "--skip-phases", "addon/coredns")
	client := adminClient(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{}); err != nil {
		t.Errorf("kube-proxy not installed: %v", err)
	}
	assertNoCoreDNS(ctx, t, client, "--skip-phases addon/coredns")

	b, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	disabled := strings.Replace(string(b), "kind: ClusterConfiguration\n", "kind: ClusterConfiguration\ndns:\n  disabled: true\n", 1)
	disabledFile := filepath.Join(dir, "dns-disabled.yaml")
	if err := os.WriteFile(disabledFile, []byte(disabled), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, "init", "phase", "addon", "coredns", "--root-dir", root, "--config", disabledFile)
	if !strings.Contains(r.stderr, "dns.disabled: true") {
		t.Errorf("no note that CoreDNS is disabled:\n%s", r.stderr)
	}
	assertNoCoreDNS(ctx, t, client, "dns.disabled")
}

func assertNoCoreDNS(ctx context.Context, t *testing.T, client kubernetes.Interface, why string) {
	t.Helper()
	if _, err := client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("with %s: Deployment coredns: %v, want NotFound", why, err)
	}
	if _, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("with %s: Service kube-dns: %v, want NotFound", why, err)
	}
}

// TestBundledKubeProxy: "kubestrap kube-proxy" is upstream's command, stamped v1.37.2.
func TestBundledKubeProxy(t *testing.T) {
	// A front kubestrap extracts its component program under KUBESTRAP_ROOT_DIR, here a
	// temporary root rather than the machine's /var/lib/kubestrap.
	t.Setenv("KUBESTRAP_ROOT_DIR", t.TempDir())
	help := mustRun(t, "kube-proxy", "--help").stdout
	if !strings.Contains(help, "The Kubernetes network proxy runs on each node") || !strings.Contains(help, "--proxy-mode") {
		t.Errorf("kube-proxy --help is not upstream's:\n%s", help)
	}
	if v := strings.TrimSpace(mustRun(t, "kube-proxy", "--version").stdout); v != "Kubernetes v1.37.2" {
		t.Errorf("kube-proxy --version = %q", v)
	}
}

func adminClient(t *testing.T, root string) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(rc)
}

// waitPodsRunning waits until at least n pods in kube-system with the label selector are Running
// on a node.
func waitPodsRunning(ctx context.Context, t *testing.T, client kubernetes.Interface, selector string, n int) {
	t.Helper()
	var last []string
	for {
		pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			running := 0
			last = last[:0]
			for _, p := range pods.Items {
				last = append(last, p.Name+" on "+p.Spec.NodeName+": "+string(p.Status.Phase))
				if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
					running++
				}
			}
			if running >= n {
				t.Logf("%s: %s", selector, strings.Join(last, ", "))
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("fewer than %d pods %s Running: %v %v", n, selector, err, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
