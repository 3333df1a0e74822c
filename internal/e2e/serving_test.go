package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"
)

// servingOffset moves the control plane of the serving-certificate test to its own ports.
const servingOffset = 26000

// TestKubeletServingApprover: after init (local mode) and a join, kubestrap's CSR approver runs
// under its own name, has frozen the worker's join addresses, leaves a kubelet-serving CSR with a
// foreign IP address pending with a Warning Event that says why, and approves the worker's
// correct one, which the controller-manager's signer then issues.
func TestKubeletServingApprover(t *testing.T) {
	ctrl := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), servingOffset)
	t.Cleanup(func() { stopAndCheck(t, ctrl) })
	mustRun(t, "init", "--root-dir", ctrl, "--config", cfgFile)

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(ctrl, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("approver process", func(t *testing.T) {
		pid := readPid(t, ctrl, "kubestrap-csr-approver")
		argv := cmdline(t, pid)
		want := []string{filepath.Join(ctrl, "var/lib/kubestrap/bin/kubestrap-csr-approver"),
			"--healthz-bind-address=127.0.0.1:" + strconv.Itoa(10261+servingOffset), "--kubeconfig=" + filepath.Join(ctrl, "etc/kubernetes/csr-approver.conf")}
		if !slices.Equal(argv, want) {
			t.Errorf("approver runs as %q, want %q", argv, want)
		}
		fi, err := os.Stat(filepath.Join(ctrl, "etc/kubernetes/csr-approver.conf"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("csr-approver.conf: %v, %v", fi, err)
		}
	})

	r := mustRun(t, "token", "create", "--root-dir", ctrl, "--print-join-command")
	joinArgs := strings.Fields(strings.TrimSpace(r.stdout))[1:]
	waitForSignature(t, ctx, admin, joinArgs[3][:6])
	worker := t.TempDir()
	mustRun(t, append(joinArgs, "--root-dir", worker, "--node-name", "worker-1")...)

	// What join recorded, as the node, and what the approver froze from it.
	lease, err := admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "worker-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("worker-1's Lease: %v", err)
	}
	joinAddrs := lease.Annotations["kubestrap.io/join-addresses"]
	if joinAddrs == "" {
		t.Fatalf("worker-1's Lease has no join addresses: %v", lease.Annotations)
	}
	poll(t, ctx, "the approver to record worker-1's join addresses", func() (bool, error) {
		cm, err := admin.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, "kubestrap-node-addresses", metav1.GetOptions{})
		return err == nil && cm.Data["worker-1"] == joinAddrs, nil
	})
	joinIP := net.ParseIP(strings.Split(joinAddrs, ",")[0])

	nrc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(worker, "etc/kubernetes/kubelet.conf"))
	if err != nil {
		t.Fatal(err)
	}
	node := kubernetes.NewForConfigOrDie(nrc)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// What a kubelet with an ECDSA key asks for (client-go's DefaultKubeletServingGetUsages).
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	// submit sends a kubelet-serving CSR for worker-1 with ips, as worker-1.
	submit := func(t *testing.T, ips ...net.IP) (string, types.UID) {
		t.Helper()
		pemReq, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:node:worker-1", Organization: []string{"system:nodes"}}, []string{"worker-1"}, ips)
		if err != nil {
			t.Fatal(err)
		}
		name, uid, err := csr.RequestCertificateWithContext(ctx, node, pemReq, "", certificatesv1.KubeletServingSignerName, nil, usages, key)
		if err != nil {
			t.Fatalf("worker-1 submitting a kubelet-serving CSR: %v", err)
		}
		return name, uid
	}

	t.Run("foreign IP stays pending with an event", func(t *testing.T) {
		name, _ := submit(t, joinIP, net.ParseIP("192.0.2.77"))
		want := `left pending by kubestrap-csr-approver: ip-addresses check failed: IP address 192.0.2.77 is not an address node "worker-1" had when it joined (` + joinAddrs + `)`
		poll(t, ctx, "the approver's Warning event on "+name, func() (bool, error) {
			evs, err := admin.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
			})
			if err != nil {
				return false, err
			}
			return slices.ContainsFunc(evs.Items, func(e corev1.Event) bool {
				return e.Type == corev1.EventTypeWarning && e.Reason == "KubestrapNotApproved" && e.Message == want && e.InvolvedObject.Kind == "CertificateSigningRequest"
			}), nil
		})
		got, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Conditions) != 0 || len(got.Status.Certificate) != 0 {
			t.Errorf("CSR %s: conditions %v, certificate %d bytes; want pending (never denied)", name, got.Status.Conditions, len(got.Status.Certificate))
		}
	})

	t.Run("the node's own addresses are approved and issued", func(t *testing.T) {
		name, uid := submit(t, joinIP)
		certPEM, err := csr.WaitForCertificate(ctx, node, name, uid)
		if err != nil {
			t.Fatalf("CSR %s was not approved and issued: %v", name, err)
		}
		got, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(got.Status.Conditions, func(c certificatesv1.CertificateSigningRequestCondition) bool {
			return c.Type == certificatesv1.CertificateApproved && c.Reason == "KubestrapApproved"
		}) {
			t.Errorf("CSR %s conditions %v, want Approved by KubestrapApproved", name, got.Status.Conditions)
		}
		certs, err := certutil.ParseCertsPEM(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		caPEM, err := os.ReadFile(filepath.Join(ctrl, "etc/kubernetes/pki/ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(caPEM)
		// What kube-apiserver checks with --kubelet-certificate-authority when it connects to the
		// kubelet at its address.
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the issued certificate does not verify as a server certificate of the cluster CA: %v", err)
		}
		if err := certs[0].VerifyHostname(joinIP.String()); err != nil {
			t.Errorf("the issued certificate is not valid for %s: %v", joinIP, err)
		}
	})
}

// poll waits for cond, failing the test after the context's deadline.
func poll(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond()
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last error: %v)", what, err, last)
	}
}
