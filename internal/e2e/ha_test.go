package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubestrap/kubestrap/internal/etcdcluster"
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
	// The write loop measures the cluster, not client-go's default rate limit (5 requests/s).
	rc.QPS, rc.Burst = 1000, 1000
	return kubernetes.NewForConfigOrDie(rc)
}

// TestHA runs a highly available cluster on hosts of the harness (hahosts_test.go): network
// namespaces cp1, cp2, cp3 on a bridge, each with its own address and root dir, a worker host w
// and a host x for a join that must fail.
//
// controlPlaneEndpoint is a TCP proxy the test runs on the bridge address (10.215.0.1:16443),
// forwarding each connection to an apiserver whose /readyz answered at the last check. That is
// how such a cluster is run (a load balancer in front of the apiservers), and it is the only
// choice that keeps the endpoint up when any one host dies; the first node's address would make
// host cp1 special, and killing it would take the endpoint with it.
//
// init on cp1 with --upload-certs; a worker joins through the endpoint; cp2 and cp3 join as
// control planes (each timed: the figure of a control-plane join); etcd has three voting members;
// a Secret written through one apiserver is read through the others (one encryption key); then
// everything of cp1 is killed with SIGKILL during a bounded write loop through the endpoint
// (failed/total is the figure of write availability), every acknowledged write is read back,
// cp1 is reset (its etcd is down: its member goes through the others) and joins again; a join
// with a wrong certificate key fails, saying so, and leaves the cluster with three healthy voting
// members and nothing on the joiner; so does a join that fails after its member was promoted
// (its member removed, its processes stopped, its files removed).
func TestHA(t *testing.T) {
	c := newHACluster(t, 3, "cp1", "cp2", "cp3", "w", "x")
	cp1, cp2, cp3, w, x := c.Host("cp1"), c.Host("cp2"), c.Host("cp3"), c.Host("w"), c.Host("x")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	start := time.Now()
	initOut := cp1.MustRun(t, "init", "--config", haConfig(t, cp1, c.Endpoint()), "--upload-certs").stdout
	t.Logf("init of cp1 took %s", time.Since(start).Round(time.Millisecond))
	admin := haAdmin(t, cp1)
	waitBackends(t, c, 1)

	m := regexp.MustCompile(`(?m)^kubestrap join (\S+) --token (\S+) --discovery-token-ca-cert-hash (\S+) --control-plane --certificate-key ([0-9a-f]{64})$`).FindStringSubmatch(initOut)
	if m == nil {
		t.Fatalf("init printed no control-plane join command:\n%s", initOut)
	}
	if m[1] != c.Endpoint() {
		t.Errorf("init's join command names %s, want the endpoint %s", m[1], c.Endpoint())
	}
	token, hash, key := m[2], m[3], m[4]
	waitForSignature(t, ctx, admin, token[:6])
	joinArgs := []string{"join", c.Endpoint(), "--token", token, "--discovery-token-ca-cert-hash", hash}
	cpJoin := func(h *haHost, key string) []string {
		return append(slices.Clone(joinArgs), "--control-plane", "--certificate-key", key, "--apiserver-advertise-address", h.Addr, "--node-name", h.Name)
	}

	t.Run("worker joins through the endpoint", func(t *testing.T) {
		r := w.MustRun(t, append(slices.Clone(joinArgs), "--node-name", "w")...)
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
	})

	for i, h := range []*haHost{cp2, cp3} {
		start := time.Now()
		r := h.MustRun(t, cpJoin(h, key)...)
		took := time.Since(start)
		promoted := regexp.MustCompile(`voting member \((\S+) after the start\)`).FindStringSubmatch(r.stderr)
		ready := regexp.MustCompile(`kube-apiserver is healthy after (\S+)`).FindStringSubmatch(r.stderr)
		if promoted == nil || ready == nil {
			t.Fatalf("join of %s did not report its promotion and its apiserver's readiness:\n%s", h.Name, r.stderr)
		}
		t.Logf("FIGURE control-plane join of %s (whole command: discovery to promoted member and healthy components): %s; member promoted %s after the control plane's start, kube-apiserver ready %s after the wait began", h.Name, took.Round(time.Millisecond), promoted[1], ready[1])
		// The node's own CSR approver is ready before the join ends (control-plane-join/csr-approver).
		if !strings.Contains(r.stdout+r.stderr, "[csr-approver] kubestrap-csr-approver is ready after") {
			t.Errorf("join of %s did not wait for its CSR approver:\n%s", h.Name, r.stderr)
		}
		if !strings.Contains(r.stdout, `joined the cluster as control-plane node "`+h.Name+`"`) {
			t.Errorf("join of %s printed no success message:\n%s", h.Name, r.stdout)
		}
		waitBackends(t, c, 2+i)
	}

	t.Run("three voting etcd members", func(t *testing.T) {
		checkMembers(t, ctx, c, cp2, []string{"cp1", "cp2", "cp3"})
	})

	t.Run("one encryption key", func(t *testing.T) {
		// Secrets are encrypted at rest: every apiserver must read what another wrote.
		direct := func(h *haHost, via *haHost) kubernetes.Interface {
			rc, err := clientcmd.BuildConfigFromFlags("https://"+via.Addr+":6443", filepath.Join(h.Root, "etc/kubernetes/admin.conf"))
			if err != nil {
				t.Fatal(err)
			}
			rc.Timeout = 10 * time.Second
			return kubernetes.NewForConfigOrDie(rc)
		}
		for _, writer := range []*haHost{cp1, cp2, cp3} {
			name := "written-through-" + writer.Name
			if _, err := direct(cp2, writer).CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating Secret %s through %s: %v", name, writer.Name, err)
			}
			for _, reader := range []*haHost{cp1, cp2, cp3} {
				s, err := direct(cp2, reader).CoreV1().Secrets("default").Get(ctx, name, metav1.GetOptions{})
				if err != nil || string(s.Data["k"]) != "v" {
					t.Errorf("Secret %s written through %s, read through %s: %v", name, writer.Name, reader.Name, err)
				}
			}
		}
	})

	t.Run("losing a host", func(t *testing.T) {
		admin := haAdmin(t, cp2)
		const total = 400
		var acked []string
		failed, lateFailed := 0, 0
		var failures []string
		killAt := 50
		start := time.Now()
		for i := range total {
			if i == killAt {
				cp1.Kill(t)
				t.Logf("killed every process of cp1 after %d writes", i)
			}
			name := fmt.Sprintf("ha-write-%03d", i)
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := admin.CoreV1().ConfigMaps("default").Create(wctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": name}}, metav1.CreateOptions{})
			wcancel()
			if err != nil {
				failed++
				if i >= total/2 {
					lateFailed++
				}
				if len(failures) < 5 {
					failures = append(failures, fmt.Sprintf("%s: %v", name, err))
				}
				continue
			}
			acked = append(acked, name)
		}
		t.Logf("FIGURE write availability while losing cp1: %d failed / %d total writes through the endpoint (cp1 killed after write %d; %s in all); first failures: %v", failed, total, killAt, time.Since(start).Round(time.Millisecond), failures)
		if failed > total/10 {
			t.Errorf("%d of %d writes failed: the cluster did not keep serving writes with one host lost", failed, total)
		}
		// Once the endpoint has dropped the dead host and etcd has its leader, every write works.
		if lateFailed > 0 {
			t.Errorf("%d of the last %d writes failed, long after cp1 was lost", lateFailed, total/2)
		}
		// Every write acknowledged before or after the loss is there.
		for _, name := range acked {
			cm, err := admin.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil || cm.Data["i"] != name {
				t.Errorf("acknowledged write %s lost: %v", name, err)
			}
		}
		if pids, err := cp1.Pids(); err != nil || len(pids) > 0 {
			t.Errorf("processes of cp1 after the kill: %v %v", pids, err)
		}
	})

	t.Run("reset refused while it would leave etcd without a quorum, even with --force", func(t *testing.T) {
		// cp1 is dead: without cp2, cp3 alone would not be a quorum of the two members left.
		r := cp2.Run(t, "reset", "--force")
		for _, want := range []string{"refusing to reset this node", `"cp1"`, "nothing was stopped or deleted", "--ignore-preflight-errors=EtcdQuorum"} {
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("reset --force of cp2 with cp1 lost: exit %d, want 1 and %q in:\n%s", r.code, want, r.stderr)
			}
		}
		checkMembers(t, ctx, c, cp2, []string{"cp1", "cp2", "cp3"}, "cp1")
		if pids, err := cp2.Pids(); err != nil || len(pids) == 0 {
			t.Errorf("cp2's processes after the refused reset: %v %v", pids, err)
		}
	})

	t.Run("reset the lost host and join it again", func(t *testing.T) {
		r := cp1.MustRun(t, "reset", "--force")
		t.Logf("reset of cp1:\n%s", r.stderr)
		checkMembers(t, ctx, c, cp2, []string{"cp2", "cp3"})
		if left := processesUnder(cp1.Root); len(left) > 0 {
			t.Errorf("reset left processes of cp1: %v", left)
		}
		start := time.Now()
		cp1.MustRun(t, cpJoin(cp1, key)...)
		t.Logf("FIGURE control-plane join of cp1 again after its reset: %s", time.Since(start).Round(time.Millisecond))
		waitBackends(t, c, 3)
		checkMembers(t, ctx, c, cp2, []string{"cp1", "cp2", "cp3"})
	})

	t.Run("a join that fails after its start is undone", func(t *testing.T) {
		// No apiserver is ready 1 ms after the wait begins: the join fails in wait-control-plane,
		// after its member was added, started and promoted.
		file := x.Root + "-join.yaml"
		if err := os.WriteFile(file, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ntimeouts:\n  controlPlaneComponentHealthCheck: 1ms\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := x.Run(t, append(cpJoin(x, key), "--config", file)...)
		if r.code == 0 || !strings.Contains(r.stderr, "phase wait-control-plane") || !strings.Contains(r.stderr, "is a voting member") {
			t.Fatalf("join: exit %d, want a failure in wait-control-plane after the promotion:\n%s", r.code, r.stderr)
		}
		for _, want := range []string{`Removed this join's etcd member x`, "Removed the files written by this join attempt"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("the failed join's output lacks %q:\n%s", want, r.stderr)
			}
		}
		if left := tree(t, x.Root); len(left) > 0 {
			t.Errorf("the failed join left %v on x", left)
		}
		if pids, err := x.Pids(); err != nil || len(pids) > 0 {
			t.Errorf("the failed join left processes on x: %v %v", pids, err)
		}
		checkMembers(t, ctx, c, cp2, []string{"cp1", "cp2", "cp3"})
	})

	t.Run("a wrong certificate key", func(t *testing.T) {
		wrong := strings.Repeat("0f", 32)
		r := x.Run(t, cpJoin(x, wrong)...)
		if r.code == 0 || !strings.Contains(r.stderr, "the certificate key does not decrypt") {
			t.Errorf("join with a wrong key: exit %d, want a failure saying the key does not decrypt:\n%s", r.code, r.stderr)
		}
		if left := tree(t, x.Root); len(left) > 0 {
			t.Errorf("the failed join left %v on x", left)
		}
		if pids, err := x.Pids(); err != nil || len(pids) > 0 {
			t.Errorf("the failed join left processes on x: %v %v", pids, err)
		}
		checkMembers(t, ctx, c, cp2, []string{"cp1", "cp2", "cp3"})
	})
}

// waitBackends waits until n backends of the endpoint answer /readyz.
func waitBackends(t *testing.T, c *haCluster, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d apiservers ready behind the endpoint", n), 3*time.Minute, func() string {
		if r := c.proxy.Ready(); len(r) != n {
			return fmt.Sprintf("ready: %v", r)
		}
		return ""
	})
}

// checkMembers checks that the etcd cluster, asked with host h's etcd client certificate, has
// exactly the voting members names, all healthy but those in down (hosts that were killed).
func checkMembers(t *testing.T, ctx context.Context, c *haCluster, h *haHost, names []string, down ...string) {
	t.Helper()
	pkiDir := filepath.Join(h.Root, "etc/kubernetes/pki")
	tlsConfig, err := etcdcluster.ClientTLS(filepath.Join(pkiDir, "etcd/ca.crt"), filepath.Join(pkiDir, "apiserver-etcd-client.crt"), filepath.Join(pkiDir, "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	var eps []string
	for _, n := range names {
		if !slices.Contains(down, n) {
			eps = append(eps, "https://"+c.Host(n).Addr+":2379")
		}
	}
	ec, err := etcdcluster.Dial(ctx, eps, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	what := "etcd members " + strings.Join(names, ", ") + ", voting and healthy"
	if len(down) > 0 {
		what += " but " + strings.Join(down, ", ")
	}
	waitFor(t, what, 2*time.Minute, func() string {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		members, err := ec.MemberList(mctx)
		if err != nil {
			return err.Error()
		}
		var got []string
		for _, m := range members {
			if m.IsLearner {
				return fmt.Sprintf("member %s is a learner", m)
			}
			got = append(got, m.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			return fmt.Sprintf("members %v", got)
		}
		healthy, total, bad, err := etcdcluster.Health(mctx, ec)
		if err != nil || healthy != total-len(down) {
			return fmt.Sprintf("%d of %d healthy (%v): %v", healthy, total, bad, err)
		}
		return ""
	})
}
