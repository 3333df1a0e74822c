package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/copycerts"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// uploadCertsOffset moves the control plane of the certificate hand-off test to its own ports.
const uploadCertsOffset = 35500

var keyLine = regexp.MustCompile(`(?m)^([0-9a-f]{64})$`)

// TestUploadCerts: init with controlPlaneEndpoint and --upload-certs stores the shared
// certificates in kube-system/kubeadm-certs, owned by a 2 h bootstrap token and readable by
// bootstrap tokens only through its Role; the key init prints (on its own line and in the
// control-plane join command) decrypts them to exactly the control plane's files, another key
// writes nothing; `init phase upload-certs --upload-certs` re-uploads under a new key; the key
// is in neither the saved configuration nor the cluster's; and the garbage collector deletes
// the Secret with its token.
func TestUploadCerts(t *testing.T) {
	root := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), uploadCertsOffset)
	endpoint := "127.0.0.1:" + strconv.Itoa(6443+uploadCertsOffset)
	b, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("kind: ClusterConfiguration\n"), []byte("kind: ClusterConfiguration\ncontrolPlaneEndpoint: "+endpoint+"\n"), 1)
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAndCheck(t, root) })

	r := mustRun(t, "init", "--root-dir", root, "--config", cfgFile, "--upload-certs")
	m := keyLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("init --upload-certs printed no key on a line of its own:\n%s", r.stdout)
	}
	key := m[1]
	cpJoin := regexp.MustCompile(`(?m)^kubestrap join ` + regexp.QuoteMeta(endpoint) + ` --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64} --control-plane --certificate-key ` + key + `$`)
	if !cpJoin.MatchString(r.stdout) {
		t.Errorf("init printed no control-plane join command with the key:\n%s", r.stdout)
	}
	if strings.Contains(r.stderr, key) {
		t.Errorf("the key is on init's stderr:\n%s", r.stderr)
	}
	if n := strings.Count(r.stdout, key); n != 2 {
		t.Errorf("the key is printed %d times, want twice (its line and the join command):\n%s", n, r.stdout)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(rc)
	// kubestrap's own client (package kubeclient), as join uses it, against the real apiserver.
	kc, err := kubeclient.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	secret, err := admin.CoreV1().Secrets("kube-system").Get(ctx, copycerts.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].Kind != "Secret" {
		t.Fatalf("owner references %+v, want one bootstrap token Secret", secret.OwnerReferences)
	}
	owner := secret.OwnerReferences[0]
	tokSecret, err := admin.CoreV1().Secrets("kube-system").Get(ctx, owner.Name, metav1.GetOptions{})
	if err != nil || tokSecret.UID != owner.UID || tokSecret.Type != bootstrapapi.SecretTypeBootstrapToken {
		t.Fatalf("owner %s: %v (uid %s, type %s)", owner.Name, err, tokSecret.UID, tokSecret.Type)
	}
	tok, err := bootstrap.TokenFromSecret(tokSecret)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(tok.Expires); left < copycerts.TokenTTL-10*time.Minute || left > copycerts.TokenTTL {
		t.Errorf("the owning token expires in %s, want about %s", left, copycerts.TokenTTL)
	}
	if _, err := admin.RbacV1().Roles("kube-system").Get(ctx, copycerts.RoleName, metav1.GetOptions{}); err != nil {
		t.Error(err)
	}

	t.Run("bootstrap tokens read only this Secret", func(t *testing.T) {
		token := regexp.MustCompile(`--token ([a-z0-9]{6}\.[a-z0-9]{16})`).FindStringSubmatch(r.stdout)
		if token == nil {
			t.Fatal("no token in init's output")
		}
		trc := rest.AnonymousClientConfig(rc)
		trc.BearerToken = token[1]
		tc := kubernetes.NewForConfigOrDie(trc)
		if _, err := tc.CoreV1().Secrets("kube-system").Get(ctx, copycerts.SecretName, metav1.GetOptions{}); err != nil {
			t.Errorf("the bootstrap token cannot read %s: %v", copycerts.SecretName, err)
		}
		if _, err := tc.CoreV1().Secrets("kube-system").Get(ctx, owner.Name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("the bootstrap token reads another Secret: %v", err)
		}
	})

	t.Run("download", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "pki")
		if err := copycerts.Download(ctx, kc, dst, mustKey(t, key), fsutil.NewDisk(nil)); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub", "etcd/ca.crt", "etcd/ca.key"} {
			got, err := os.ReadFile(filepath.Join(dst, n))
			want, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki", n))
			if err != nil || len(want) == 0 || !bytes.Equal(got, want) {
				t.Errorf("%s: downloaded %d bytes (%v), the control plane's has %d", n, len(got), err, len(want))
			}
		}
		other, _ := copycerts.NewKey()
		wrong := filepath.Join(t.TempDir(), "pki")
		err = copycerts.Download(ctx, kc, wrong, mustKey(t, other), fsutil.NewDisk(nil))
		if err == nil || !strings.Contains(err.Error(), "the certificate key does not decrypt kube-system/kubeadm-certs") {
			t.Errorf("a wrong key: %v", err)
		}
		if _, err := os.Stat(wrong); !os.IsNotExist(err) {
			t.Errorf("a wrong key wrote %s: %v", wrong, err)
		}
	})

	t.Run("the key is not stored", func(t *testing.T) {
		saved, err := os.ReadFile(filepath.Join(root, "etc/kubernetes/kubestrap/config.yaml"))
		if err != nil || bytes.Contains(saved, []byte(key)) {
			t.Errorf("saved configuration (%v) holds the key", err)
		}
		cm, err := admin.CoreV1().ConfigMaps("kube-system").Get(ctx, bootstrap.KubeadmConfigConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range cm.Data {
			if strings.Contains(v, key) {
				t.Errorf("kubeadm-config %s holds the key", k)
			}
		}
	})

	// A re-upload: a new key on a line of its own, the old one no longer decrypts, a new owner.
	r = mustRun(t, "init", "phase", "upload-certs", "--upload-certs", "--root-dir", root, "--config", cfgFile)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 1 || !keyLine.MatchString(lines[0]) || lines[0] == key {
		t.Fatalf("init phase upload-certs printed %q, want exactly one new key", r.stdout)
	}
	key2 := lines[0]
	if strings.Contains(r.stderr, key2) {
		t.Errorf("the new key is on stderr:\n%s", r.stderr)
	}
	dst := filepath.Join(t.TempDir(), "pki")
	if err := copycerts.Download(ctx, kc, dst, mustKey(t, key), fsutil.NewDisk(nil)); err == nil {
		t.Error("the old key still decrypts the re-uploaded certificates")
	}
	if err := copycerts.Download(ctx, kc, dst, mustKey(t, key2), fsutil.NewDisk(nil)); err != nil {
		t.Errorf("the new key: %v", err)
	}
	secret, err = admin.CoreV1().Secrets("kube-system").Get(ctx, copycerts.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].UID == owner.UID {
		t.Fatalf("after the re-upload the owners are %+v, want only a new token", secret.OwnerReferences)
	}

	// init again on the finished control plane does nothing, and says how to upload.
	r = mustRun(t, "init", "--root-dir", root, "--config", cfgFile, "--upload-certs")
	if !strings.Contains(r.stderr, "nothing to do") || !strings.Contains(r.stderr, "run 'kubestrap init phase upload-certs --upload-certs'") || keyLine.MatchString(r.stdout) {
		t.Errorf("init --upload-certs on a finished control plane:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}

	// The token expiring is simulated by deleting it (the token cleaner deletes expired tokens):
	// the garbage collector then deletes the certificates.
	newOwner := secret.OwnerReferences[0].Name
	if err := admin.CoreV1().Secrets("kube-system").Delete(ctx, newOwner, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := admin.CoreV1().Secrets("kube-system").Get(ctx, copycerts.SecretName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("kubeadm-certs still exists 3 minutes after its owning token was deleted: %v", err)
	}
	t.Logf("the garbage collector deleted kubeadm-certs %s after its token", time.Since(start).Round(100*time.Millisecond))
	if err := copycerts.Download(ctx, kc, filepath.Join(t.TempDir(), "pki"), mustKey(t, key2), fsutil.NewDisk(nil)); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("download after expiry: %v", err)
	}
}

func mustKey(t *testing.T, s string) []byte {
	t.Helper()
	k, err := copycerts.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
