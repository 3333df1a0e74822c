package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// haConfig is a control-plane host's configuration: local mode with kubestrap's default ports
// (each host has a network namespace of its own), its own address, and the cluster's endpoint.
func haConfig(t *testing.T, h *haHost, endpoint string) string {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: %s
nodeRegistration:
  name: %s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
controlPlaneEndpoint: %q
---
apiVersion: kubestrap.io/v1alpha1
kind: KubestrapConfiguration
mode: local
`, h.Addr, h.Name, endpoint)
	path := h.Root + "-init.yaml"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// haAdmin is a client of the cluster through the endpoint, with host h's admin.conf.
func haAdmin(t *testing.T, h *haHost) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(h.Root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	rc.Timeout = 10 * time.Second
	return kubernetes.NewForConfigOrDie(rc)
}

// TestHA runs a highly available cluster on three hosts of the harness (hahosts_test.go):
// network namespaces cp1, cp2, cp3 on a bridge, each with its own address and root dir, and a
// worker host w.
//
// controlPlaneEndpoint is a TCP proxy the test runs on the bridge address (10.215.0.1:16443),
// forwarding each connection to an apiserver whose /readyz answered at the last check. That is
// how such a cluster is run (a load balancer in front of the apiservers), and it is the only
// choice that keeps the endpoint up when any one host dies; the first node's address would make
// host cp1 special, and killing it would take the endpoint with it.
func TestHA(t *testing.T) {
	c := newHACluster(t, 3, "cp1", "cp2", "cp3", "w")
	cp1, w := c.Host("cp1"), c.Host("w")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	start := time.Now()
	initOut := cp1.MustRun(t, "init", "--config", haConfig(t, cp1, c.Endpoint())).stdout
	t.Logf("init of cp1 took %s", time.Since(start).Round(time.Millisecond))
	admin := haAdmin(t, cp1)

	waitFor(t, "cp1's apiserver ready behind the endpoint", 2*time.Minute, func() string {
		if r := c.proxy.Ready(); len(r) != 1 {
			return fmt.Sprintf("ready backends %v", r)
		}
		return ""
	})

	workerJoin := regexp.MustCompile(`kubestrap join (\S+) --token (\S+) --discovery-token-ca-cert-hash (\S+)`).FindStringSubmatch(initOut)
	if workerJoin == nil {
		t.Fatalf("init printed no worker join command:\n%s", initOut)
	}
	if workerJoin[1] != c.Endpoint() {
		t.Errorf("init's join command names %s, want the endpoint %s", workerJoin[1], c.Endpoint())
	}
	token, hash := workerJoin[2], workerJoin[3]
	waitForSignature(t, ctx, admin, token[:6])

	t.Run("worker joins through the endpoint", func(t *testing.T) {
		r := w.MustRun(t, "join", c.Endpoint(), "--token", token, "--discovery-token-ca-cert-hash", hash, "--node-name", "w")
		if !strings.Contains(r.stdout, "This node has joined the cluster") {
			t.Errorf("join printed no success message:\n%s", r.stdout)
		}
		kc, err := clientcmd.LoadFromFile(filepath.Join(w.Root, "etc/kubernetes/kubelet.conf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range kc.Clusters {
			if cl.Server != "https://"+c.Endpoint() {
				t.Errorf("the worker's kubelet.conf points at %s, want the endpoint", cl.Server)
			}
		}
		if _, err := admin.CoordinationV1().Leases("kube-node-lease").Get(ctx, "w", metav1.GetOptions{}); err != nil {
			t.Errorf("the worker's Lease (join-addresses): %v", err)
		}
	})
}
