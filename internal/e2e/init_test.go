package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestInitLocal brings up a whole control plane in local mode and checks what a user relies on:
// the API answers as v1.37.2, secrets are encrypted in etcd, the bundled controller-manager
// approves and signs a bootstrapping kubelet's CSR, a killed apiserver is restarted, and stopping
// leaves no process behind.
func TestInitLocal(t *testing.T) {
	root := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), 20000)
	t.Cleanup(func() { stopAndCheck(t, root) })

	r := mustRun(t, "init", "--root-dir", root, "--config", cfgFile)
	if !strings.Contains(r.stderr, "[wait-control-plane]") || !strings.Contains(r.stderr, "[certs]") {
		t.Errorf("init progress lacks kubeadm-style phase lines:\n%s", r.stderr)
	}
	join := regexp.MustCompile(`kubestrap join (\S+) --token (\S+) --discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})`).FindStringSubmatch(r.stdout)
	if join == nil {
		t.Fatalf("init printed no join command:\n%s", r.stdout)
	}
	token := join[2]

	adminConf := filepath.Join(root, "etc/kubernetes/admin.conf")
	rc, err := clientcmd.BuildConfigFromFlags("", adminConf)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("namespaces", func(t *testing.T) {
		nss, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ns := range nss.Items {
			names = append(names, ns.Name)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != "default,kube-node-lease,kube-public,kube-system" {
			t.Errorf("namespaces = %v", names)
		}
		if _, err := exec.LookPath("kubectl"); err == nil {
			out, err := exec.Command("kubectl", "--kubeconfig", adminConf, "get", "ns", "-o", "name").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "namespace/kube-system") {
				t.Errorf("kubectl get ns: %v\n%s", err, out)
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		v, err := client.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != "v1.37.2" {
			t.Errorf("apiserver /version says %q, want v1.37.2", v.GitVersion)
		}
	})

	t.Run("processes named after components", func(t *testing.T) {
		for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubestrap-csr-approver"} {
			pid := readPid(t, root, c)
			argv := cmdline(t, pid)
			if filepath.Base(argv[0]) != c || len(argv) < 2 {
				t.Errorf("%s (pid %d) runs as %q, want argv[0] named %s with its flags", c, pid, argv, c)
			}
		}
	})

	t.Run("secrets encrypted at rest", func(t *testing.T) {
		if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e"}, Data: map[string]string{"k": "v"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e"}, StringData: map[string]string{"password": "hunter2"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		raw := etcdGet(t, root, 22379, "/registry/secrets/default/e2e")
		if !bytes.HasPrefix(raw, []byte("k8s:enc:secretbox:v1:key1:")) || bytes.Contains(raw, []byte("hunter2")) {
			t.Errorf("secret in etcd is not secretbox-encrypted: %q", truncate(raw))
		}
	})

	t.Run("bootstrap token CSR approved and signed", func(t *testing.T) {
		id, secret, _ := strings.Cut(token, ".")
		_ = secret
		bc := rest.CopyConfig(rc)
		bc.TLSClientConfig.CertData, bc.TLSClientConfig.KeyData = nil, nil
		bc.BearerToken = token
		bclient := kubernetes.NewForConfigOrDie(bc)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "system:node:e2e-worker", Organization: []string{"system:nodes"}},
		}, key)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := bclient.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-" + id + "-"},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}),
				SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
				Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create CSR with the bootstrap token: %v", err)
		}
		var got *certificatesv1.CertificateSigningRequest
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			got, err = client.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
			if err == nil && len(got.Status.Certificate) > 0 {
				break
			}
		}
		if got == nil || len(got.Status.Certificate) == 0 {
			t.Fatalf("CSR %s was not approved and signed within 60s: %+v", csr.Name, got)
		}
		block, _ := pem.Decode(got.Status.Certificate)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil || cert.Subject.CommonName != "system:node:e2e-worker" {
			t.Errorf("signed certificate: %v %v", err, cert)
		}
	})

	t.Run("killed apiserver is restarted", func(t *testing.T) {
		old := readPid(t, root, "kube-apiserver")
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var cm *corev1.ConfigMap
		var err error
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if cm, err = client.CoreV1().ConfigMaps("default").Get(ctx, "e2e", metav1.GetOptions{}); err == nil {
				break
			}
		}
		if err != nil || cm.Data["k"] != "v" {
			t.Fatalf("after kill -9 of kube-apiserver the ConfigMap is not readable again: %v", err)
		}
		if now := readPid(t, root, "kube-apiserver"); now == old {
			t.Errorf("kube-apiserver pid is still %d after kill -9", old)
		}
		// The controller-manager and scheduler may restart too (they lose their leader lease while
		// the apiserver is down); status must come back to healthy.
		var st result
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			if st = run(t, "status", "--root-dir", root); st.code == 0 {
				break
			}
		}
		if st.code != 0 {
			t.Errorf("status after the restart: exit %d\n%s%s", st.code, st.stdout, st.stderr)
		}
	})

	t.Run("CSR approver health", func(t *testing.T) {
		// wait-control-plane waits for the approver's process; the csr-approver phase, once its
		// RBAC exists, for it to be ready.
		for _, want := range []string{"[wait-control-plane] Waiting for kubestrap-csr-approver at http://127.0.0.1:30261/healthz",
			"[wait-control-plane] kubestrap-csr-approver is healthy after", "[csr-approver] kubestrap-csr-approver is ready after"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("init's progress lacks %q:\n%s", want, r.stderr)
			}
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://127.0.0.1:30261" + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
				t.Errorf("approver %s: %s %q, want 200 ok", path, resp.Status, body)
			}
		}
		// status (and init's "already running" decision) checks the approver's readiness.
		st := run(t, "status", "--root-dir", root, "-o", "json")
		var rep struct {
			Components []struct {
				Name      string `json:"name"`
				HealthURL string `json:"healthURL"`
				Healthy   bool   `json:"healthy"`
			} `json:"components"`
		}
		if err := json.Unmarshal([]byte(st.stdout), &rep); err != nil {
			t.Fatalf("status -o json: exit %d, %v\n%s%s", st.code, err, st.stdout, st.stderr)
		}
		found := false
		for _, c := range rep.Components {
			if c.Name == "kubestrap-csr-approver" {
				found = true
				if c.HealthURL != "http://127.0.0.1:30261/readyz" || !c.Healthy {
					t.Errorf("status of the approver: health URL %q, healthy %v; want its /readyz, healthy", c.HealthURL, c.Healthy)
				}
			}
		}
		if !found {
			t.Errorf("status lists no approver:\n%s", st.stdout)
		}
	})

	t.Run("init again is a no-op", func(t *testing.T) {
		before := readPid(t, root, "kube-apiserver")
		r := mustRun(t, "init", "--root-dir", root, "--config", cfgFile)
		if !strings.Contains(r.stderr, "already running") {
			t.Errorf("second init did not say the control plane is up:\n%s", r.stderr)
		}
		if readPid(t, root, "kube-apiserver") != before {
			t.Errorf("second init restarted the apiserver")
		}
	})
}

// TestInitRefusesBadInput checks that mistakes found before start leave nothing running.
func TestInitRefusesBadInput(t *testing.T) {
	t.Run("root dir is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		r := run(t, "init", "--root-dir", f)
		if r.code == 0 || !strings.Contains(r.stderr, "not a directory") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("advertise address not on this host", func(t *testing.T) {
		root := t.TempDir()
		r := run(t, "init", "--root-dir", root, "--mode", "local", "--apiserver-advertise-address", "203.0.113.7")
		if r.code == 0 || !strings.Contains(r.stderr, "203.0.113.7 is not an address of this host") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		assertEmpty(t, root)
	})
	t.Run("port in use", func(t *testing.T) {
		root := t.TempDir()
		cfgFile := writeConfig(t, t.TempDir(), 21000)
		l, err := (&netListen{}).listen("127.0.0.1:" + strconv.Itoa(6443+21000))
		if err != nil {
			t.Skip("cannot hold the port:", err)
		}
		defer l.Close()
		r := run(t, "init", "--root-dir", root, "--config", cfgFile)
		if r.code == 0 || !strings.Contains(r.stderr, "Port-27443") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		assertEmpty(t, root)
		if left := processesUnder(root); len(left) > 0 {
			t.Errorf("processes left: %v", left)
		}
	})
	t.Run("approver health port in use", func(t *testing.T) {
		root := t.TempDir()
		cfgFile := writeConfig(t, t.TempDir(), 21000)
		l, err := (&netListen{}).listen("127.0.0.1:" + strconv.Itoa(10261+21000))
		if err != nil {
			t.Skip("cannot hold the port:", err)
		}
		defer l.Close()
		r := run(t, "init", "--root-dir", root, "--config", cfgFile)
		if r.code == 0 || !strings.Contains(r.stderr, "Port-31261") || !strings.Contains(r.stderr, "kubestrap-csr-approver health") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		assertEmpty(t, root)
		if left := processesUnder(root); len(left) > 0 {
			t.Errorf("processes left: %v", left)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		root := t.TempDir()
		cfg := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(cfg, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/33\n"), 0o600)
		r := run(t, "init", "--root-dir", root, "--config", cfg)
		if r.code == 0 || !strings.Contains(r.stderr, "serviceSubnet") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		assertEmpty(t, root)
	})
}

func assertEmpty(t *testing.T, root string) {
	t.Helper()
	entries, _ := os.ReadDir(root)
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("root dir %s is not empty after a refused init: %v", root, names)
	}
}

func stopAndCheck(t *testing.T, root string) {
	run(t, "stop", "--root-dir", root)
	if left := processesUnder(root); len(left) > 0 {
		for _, p := range left {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		t.Errorf("processes of %s left after stop: %v", root, left)
	}
}

func readPid(t *testing.T, root, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "run/kubestrap", name+".pid"))
	if err != nil {
		t.Fatalf("pid file of %s: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file of %s: %v", name, err)
	}
	return pid
}

func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		t.Fatalf("cmdline of %d: %v", pid, err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// etcdGet reads a raw key from etcd with the healthcheck client certificate, as an operator would.
func etcdGet(t *testing.T, root string, port int, key string) []byte {
	t.Helper()
	pki := filepath.Join(root, "etc/kubernetes/pki/etcd")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "healthcheck-client.crt"), filepath.Join(pki, "healthcheck-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"https://127.0.0.1:" + strconv.Itoa(port)},
		TLS:         &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool},
		DialTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("etcd get %s: %v (%d keys)", key, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

func truncate(b []byte) []byte {
	if len(b) > 60 {
		return b[:60]
	}
	return b
}
