package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// joinOffset moves the control plane of the join tests to its own ports.
const joinOffset = 23000

// TestJoin brings up a control plane, joins a worker root dir with the exact line printed by
// `token create --print-join-command`, and checks the node identity the worker ends up with, the
// failure modes a user meets (wrong hash, malformed or deleted token, a node that has joined
// already) and that each of them leaves the worker's root dir untouched.
func TestJoin(t *testing.T) {
	ctrl := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), joinOffset)
	t.Cleanup(func() { stopAndCheck(t, ctrl) })
	initOut := mustRun(t, "init", "--root-dir", ctrl, "--config", cfgFile).stdout

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(ctrl, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// init returns once the controller-manager is healthy; its bootstrapsigner starts signing a
	// few seconds later (after leader election). A cluster-info signed for init's own token marks
	// the control plane as ready for joins.
	initToken := regexp.MustCompile(`--token ([a-z0-9]{6})\.`).FindStringSubmatch(initOut)
	if initToken == nil {
		t.Fatalf("init printed no join command:\n%s", initOut)
	}
	start := time.Now()
	waitForSignature(t, ctx, admin, initToken[1])
	t.Logf("cluster-info was signed for init's token %s after init returned", time.Since(start).Round(time.Millisecond))

	r := mustRun(t, "token", "create", "--root-dir", ctrl, "--print-join-command", "--description", "e2e worker")
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 1 || !regexp.MustCompile(`^kubestrap join 127\.0\.0\.1:29443 --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}$`).MatchString(lines[0]) {
		t.Fatalf("token create --print-join-command printed %q, want exactly one join line", r.stdout)
	}
	joinArgs := strings.Fields(lines[0])[1:] // the printed words minus "kubestrap"
	token, hash := joinArgs[3], joinArgs[5]
	tokenID := token[:6]

	worker := t.TempDir()
	start = time.Now()
	r = mustRun(t, append(slices.Clone(joinArgs), "--root-dir", worker, "--node-name", "worker-1")...)
	took := time.Since(start)
	// The token was created a moment ago: this includes waiting for the controller-manager to
	// sign cluster-info for it.
	t.Logf("join right after token create took %s", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("join took %s against a ready control plane, want under 3s", took)
	}
	if !strings.Contains(r.stdout, "This node has joined the cluster") {
		t.Errorf("join printed no success message:\n%s", r.stdout)
	}
	if left := processesUnder(worker); len(left) > 0 {
		t.Errorf("join left processes behind: %v", left)
	}

	kubeletConf := filepath.Join(worker, "etc/kubernetes/kubelet.conf")
	t.Run("node files", func(t *testing.T) {
		for path, want := range map[string]os.FileMode{
			kubeletConf: 0o600,
			filepath.Join(worker, "var/lib/kubelet/pki/kubelet-client-current.pem"): 0o600,
			filepath.Join(worker, "etc/kubernetes/pki/ca.crt"):                      0o644,
			filepath.Join(worker, "var/lib/kubelet/config.yaml"):                    0o644,
			filepath.Join(worker, "var/lib/kubelet/kubeadm-flags.env"):              0o644,
		} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Error(err)
				continue
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s has mode %o, want %o", path, fi.Mode().Perm(), want)
			}
		}
		if _, err := os.Stat(filepath.Join(worker, "etc/kubernetes/bootstrap-kubelet.conf")); !os.IsNotExist(err) {
			t.Errorf("bootstrap-kubelet.conf is still there after the TLS bootstrap: %v", err)
		}
		ca, _ := os.ReadFile(filepath.Join(worker, "etc/kubernetes/pki/ca.crt"))
		ctrlCA, _ := os.ReadFile(filepath.Join(ctrl, "etc/kubernetes/pki/ca.crt"))
		if string(ca) != string(ctrlCA) {
			t.Error("the worker's ca.crt is not the cluster CA")
		}
	})

	nrc, err := clientcmd.BuildConfigFromFlags("", kubeletConf)
	if err != nil {
		t.Fatal(err)
	}
	node := kubernetes.NewForConfigOrDie(nrc)
	t.Run("kubelet.conf is the node's identity", func(t *testing.T) {
		ssr, err := node.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if u := ssr.Status.UserInfo; u.Username != "system:node:worker-1" || !slices.Contains(u.Groups, "system:nodes") {
			t.Errorf("kubelet.conf authenticates as %q in %v, want system:node:worker-1 in system:nodes", u.Username, u.Groups)
		}
		if _, err := exec.LookPath("kubectl"); err == nil {
			out, err := exec.Command("kubectl", "--kubeconfig", kubeletConf, "auth", "whoami").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "system:node:worker-1") {
				t.Errorf("kubectl auth whoami: %v\n%s", err, out)
			}
		}
	})
	t.Run("node authorizer and NodeRestriction", func(t *testing.T) {
		if _, err := node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("worker-1 cannot register its own Node: %v", err)
		}
		if _, err := node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-2"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("worker-1 creating Node worker-2: err = %v, want Forbidden", err)
		}
		if _, err := node.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("worker-1 listing Secrets in all namespaces: err = %v, want Forbidden", err)
		}
	})

	t.Run("a joined node is refused", func(t *testing.T) {
		before := listTree(t, worker)
		r := run(t, append(slices.Clone(joinArgs), "--root-dir", worker, "--node-name", "worker-1")...)
		if r.code == 0 || !strings.Contains(r.stderr, "FileAvailable--etc-kubernetes-kubelet.conf") {
			t.Errorf("second join: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if after := listTree(t, worker); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Errorf("a refused join changed the worker's files")
		}
	})

	t.Run("wrong CA hash", func(t *testing.T) {
		root := t.TempDir()
		wrong := "sha256:" + strings.Repeat("ab", 32)
		start := time.Now()
		r := run(t, "join", joinArgs[1], "--token", token, "--discovery-token-ca-cert-hash", wrong, "--root-dir", root, "--node-name", "worker-2")
		want := "the cluster CA's public key hash is " + hash + ", not " + wrong
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr:\n%s\nwant %q", r.code, r.stderr, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a wrong hash took %s to report", d)
		}
		assertEmpty(t, root)
	})

	t.Run("malformed token fails before any network access", func(t *testing.T) {
		root := t.TempDir()
		start := time.Now()
		// An endpoint that never answers: reaching for the network would hang.
		r := run(t, "join", "192.0.2.1:6443", "--token", "abc.def", "--discovery-token-ca-cert-hash", hash, "--root-dir", root)
		if r.code == 0 || !strings.Contains(r.stderr, "bootstrap token must have the form") {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a malformed token took %s to report", d)
		}
		assertEmpty(t, root)
	})

	t.Run("token list", func(t *testing.T) {
		r := mustRun(t, "token", "list", "--root-dir", ctrl)
		var row string
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, token) {
				row = l
			}
		}
		if !strings.HasPrefix(r.stdout, "TOKEN ") || row == "" {
			t.Fatalf("token list does not show %s:\n%s", tokenID, r.stdout)
		}
		for _, want := range []string{" 23h ", "authentication,signing", "e2e worker", "system:bootstrappers:kubeadm:default-node-token"} {
			if !strings.Contains(row, want) {
				t.Errorf("token list row lacks %q: %q", want, row)
			}
		}
		r = mustRun(t, "token", "list", "--root-dir", ctrl, "-o", "json")
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		found := false
		for dec.More() {
			var obj struct {
				Kind, APIVersion, Token string
				Usages                  []string
			}
			if err := dec.Decode(&obj); err != nil {
				t.Fatalf("token list -o json: %v\n%s", err, r.stdout)
			}
			if obj.Token == token && obj.Kind == "BootstrapToken" && obj.APIVersion == "output.kubeadm.k8s.io/v1alpha3" {
				found = true
			}
		}
		if !found {
			t.Errorf("token list -o json lacks %s:\n%s", tokenID, r.stdout)
		}
	})

	t.Run("deleted token", func(t *testing.T) {
		r := mustRun(t, "token", "delete", "--root-dir", ctrl, tokenID)
		if !strings.Contains(r.stdout, `bootstrap token "`+tokenID+`" deleted`) {
			t.Errorf("token delete printed %q", r.stdout)
		}
		if _, err := admin.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+tokenID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Secret of the deleted token: %v", err)
		}
		// The controller-manager removes the token's signature from cluster-info
		// asynchronously; until it has, the signature verifies and a join that starts fast
		// enough still succeeds, as it would with kubeadm.
		waitForSignatureGone(t, ctx, admin, tokenID)
		root := t.TempDir()
		start := time.Now()
		r = run(t, append(slices.Clone(joinArgs), "--root-dir", root, "--node-name", "worker-3")...)
		if r.code == 0 || !strings.Contains(r.stderr, `no JWS signature for token id "`+tokenID+`"`) {
			t.Errorf("join with a deleted token: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		// The pinned CA lets join ask the API server about the token instead of waiting out
		// timeouts.discovery (5m).
		// The apiserver caches a successful token authentication for 10s, so a token used just
		// before its deletion is rejected only after that.
		d := time.Since(start)
		t.Logf("join with the deleted token failed after %s", d.Round(time.Millisecond))
		if d > 30*time.Second {
			t.Errorf("a deleted token took %s to report", d)
		}
		assertEmpty(t, root)
		if r := mustRun(t, "token", "list", "--root-dir", ctrl); strings.Contains(r.stdout, tokenID) {
			t.Errorf("token list still shows the deleted token:\n%s", r.stdout)
		}
	})

	t.Run("join against a ready cluster", func(t *testing.T) {
		// A token that cluster-info is already signed for: the steady-state cost of a join.
		r := mustRun(t, "token", "create", "--root-dir", ctrl, "--print-join-command")
		args := strings.Fields(strings.TrimSpace(r.stdout))[1:]
		waitForSignature(t, ctx, admin, args[3][:6])
		root := t.TempDir()
		start := time.Now()
		mustRun(t, append(args, "--root-dir", root, "--node-name", "worker-4")...)
		t.Logf("join with a signed token took %s", time.Since(start).Round(time.Millisecond))
	})
}

// waitForSignature waits until the controller-manager has signed cluster-info for a token.
func waitForSignature(t *testing.T, ctx context.Context, c kubernetes.Interface, id string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		cm, err := c.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
		if err == nil && cm.Data["jws-kubeconfig-"+id] != "" {
			return
		}
	}
	t.Fatalf("cluster-info was not signed for token %s within 30s", id)
}

// waitForSignatureGone waits until the controller-manager has removed a deleted token's signature
// from cluster-info.
func waitForSignatureGone(t *testing.T, ctx context.Context, c kubernetes.Interface, id string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		cm, err := c.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
		if err == nil && cm.Data["jws-kubeconfig-"+id] == "" {
			return
		}
	}
	t.Fatalf("cluster-info still carries a signature for the deleted token %s after 60s", id)
}

// listTree lists the paths under root.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err == nil {
			out = append(out, path)
		}
		return nil
	})
	return out
}
