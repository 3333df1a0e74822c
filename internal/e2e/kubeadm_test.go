package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubestrap/kubestrap/internal/testfixture"
)

// freePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// TestInitWithKubeadmDefaults runs init in local mode with the file kubeadm v1.37.2 prints
// (init-defaults with the KubeletConfiguration and KubeProxyConfiguration), then reset with
// kubeadm's reset-defaults. Changed in the init file, and nothing else:
//   - localAPIEndpoint.advertiseAddress 1.2.3.4 → 127.0.0.1, nodeRegistration.name node →
//     e2e-kubeadm, kubernetesVersion 1.37.0 → v1.37.2 (what any user fills in);
//   - localAPIEndpoint.bindPort 6443 → a free port, and a KubestrapConfiguration document
//     appended with mode local and free etcd, controller-manager, scheduler and CSR approver health ports, so the test
//     runs beside other clusters on this machine;
//   - maxPods: 42 added to the KubeletConfiguration, to follow a user field into the cluster.
//
// etcd.local.dataDir (/var/lib/etcd) and certificatesDir stay as they are: --root-dir puts them
// under the temporary root.
func TestInitWithKubeadmDefaults(t *testing.T) {
	root := t.TempDir()
	p := freePorts(t, 7)
	port := func(i int) string { return strconv.Itoa(p[i]) }
	initFile := testfixture.KubeadmFile(t, "init-defaults.yaml",
		"advertiseAddress: 1.2.3.4", "advertiseAddress: 127.0.0.1",
		"  name: node\n", "  name: e2e-kubeadm\n",
		"kubernetesVersion: 1.37.0", "kubernetesVersion: v1.37.2",
		"bindPort: 6443", "bindPort: "+port(0),
		"kind: KubeletConfiguration\n", "kind: KubeletConfiguration\nmaxPods: 42\n",
		"  sourceVip: \"\"\n", "  sourceVip: \"\"\n---\napiVersion: kubestrap.io/v1alpha1\nkind: KubestrapConfiguration\nmode: local\n"+
			"etcd:\n  clientPort: "+port(1)+"\n  peerPort: "+port(2)+"\n  metricsPort: "+port(3)+"\n"+
			"controllerManager:\n  securePort: "+port(4)+"\nscheduler:\n  securePort: "+port(5)+"\n"+
			"csrApprover:\n  healthPort: "+port(6)+"\n")
	t.Cleanup(func() { stopAndCheck(t, root) })

	r := mustRun(t, "init", "--root-dir", root, "--config", initFile)
	if !strings.Contains(r.stdout, "kubestrap join 127.0.0.1:"+port(0)) {
		t.Errorf("init printed no join command:\n%s", r.stdout)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cm, err := client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"maxPods: 42\n", "cgroupDriver: systemd\n", "clientCAFile: /etc/kubernetes/pki/ca.crt\n", "healthzBindAddress: 127.0.0.1\n"} {
		if !strings.Contains(cm.Data["kubelet"], want) {
			t.Errorf("kubelet-config lacks %q:\n%s", want, cm.Data["kubelet"])
		}
	}
	// kubeadm's file chose RSA-2048 keys; kubestrap honours it over its own ECDSA default.
	cc, err := client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cc.Data["ClusterConfiguration"], "encryptionAlgorithm: RSA-2048\n") {
		t.Errorf("kubeadm-config:\n%s", cc.Data["ClusterConfiguration"])
	}

	resetFile := testfixture.KubeadmFile(t, "reset-defaults.yaml")
	mustRun(t, "reset", "--root-dir", root, "--config", resetFile, "--force")
	if left := processesUnder(root); len(left) > 0 {
		t.Errorf("processes left after reset: %v", left)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/kubernetes/admin.conf")); !os.IsNotExist(err) {
		t.Errorf("admin.conf after reset: %v", err)
	}
}
