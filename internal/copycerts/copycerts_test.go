package copycerts

import (
	"bytes"
	"context"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
)

// sharedNames are the files of a stacked-etcd control plane that an upload carries.
var sharedNames = []string{"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub", "etcd/ca.crt", "etcd/ca.key"}

// writeShared fills dir with distinct content per shared file and returns it by name.
func writeShared(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range sharedNames {
		data := []byte("content of " + n + "\n")
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o600); err != nil {
			t.Fatal(err)
		}
		out[n] = data
	}
	return out
}

// newClient is a fake clientset that gives created objects a UID, as the apiserver does (owner
// references name their owner by UID).
func newClient() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if o, ok := a.(k8stesting.CreateAction).GetObject().(metav1.Object); ok && o.GetUID() == "" {
			o.SetUID(types.UID("uid-" + o.GetName()))
		}
		return false, nil, nil
	})
	return c
}

func mustKey(t *testing.T) []byte {
	t.Helper()
	s, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeys(t *testing.T) {
	t.Parallel()
	s, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 64 {
		t.Errorf("NewKey = %d characters, want 64", len(s))
	}
	if s2, _ := NewKey(); s2 == s {
		t.Error("two keys are equal")
	}
	const good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if k, err := ParseKey(good); err != nil || hex.EncodeToString(k) != good {
		t.Errorf("ParseKey(valid) = %x, %v", k, err)
	}
	for _, bad := range []string{"", "0123", good + "00", strings.Replace(good, "0", "z", 1)} {
		_, err := ParseKey(bad)
		if err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "kubestrap certs certificate-key") {
			t.Errorf("ParseKey(%q): %v; want it to say where a key comes from", bad, err)
		}
		if len(bad) > 8 && strings.Contains(err.Error(), bad) {
			t.Errorf("ParseKey(%q): the error repeats the key: %v", bad, err)
		}
	}
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	want := writeShared(t, src)
	c := newClient()
	key := mustKey(t)
	cfg := &config.Config{}
	if err := Upload(ctx, kubeclienttest.Wrap(c), cfg, src, key); err != nil {
		t.Fatal(err)
	}
	s, err := c.CoreV1().Secrets("kube-system").Get(ctx, SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k, v := range s.Data {
		keys = append(keys, k)
		for n, plain := range want {
			if bytes.Contains(v, plain) {
				t.Errorf("data %s holds %s in the clear", k, n)
			}
		}
	}
	slices.Sort(keys)
	wantKeys := []string{"ca.crt", "ca.key", "etcd-ca.crt", "etcd-ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub"}
	if !slices.Equal(keys, wantKeys) || !slices.Equal(Keys(cfg), wantKeys) {
		t.Errorf("data keys %v (Keys: %v), want kubeadm's %v", keys, Keys(cfg), wantKeys)
	}

	dst := filepath.Join(t.TempDir(), "pki")
	if err := Download(ctx, kubeclienttest.Wrap(c), dst, key, fsutil.NewDisk(nil)); err != nil {
		t.Fatal(err)
	}
	for n, data := range want {
		got, err := os.ReadFile(filepath.Join(dst, n))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s = %q, %v; want %q", n, got, err, data)
			continue
		}
		fi, _ := os.Stat(filepath.Join(dst, n))
		wantMode := fs.FileMode(0o644)
		if strings.HasSuffix(n, ".key") {
			wantMode = 0o600
		}
		if fi.Mode().Perm() != wantMode {
			t.Errorf("%s has mode %04o, want %04o", n, fi.Mode().Perm(), wantMode)
		}
	}
	// A second download over the same files keeps them; a file of another cluster is refused.
	if err := Download(ctx, kubeclienttest.Wrap(c), dst, key, fsutil.NewDisk(nil)); err != nil {
		t.Errorf("download over identical files: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dst, "ca.crt"), []byte("another CA"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dst, "sa.key"))
	err = Download(ctx, kubeclienttest.Wrap(c), dst, key, fsutil.NewDisk(nil))
	if err == nil || !strings.Contains(err.Error(), "ca.crt exists and differs") {
		t.Errorf("download over another CA: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "sa.key")); err == nil {
		t.Error("a refused download wrote sa.key")
	}
}

func TestUploadOwnerTokenAndRBAC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	writeShared(t, src)
	c := newClient()
	before := time.Now()
	if err := Upload(ctx, kubeclienttest.Wrap(c), &config.Config{}, src, mustKey(t)); err != nil {
		t.Fatal(err)
	}
	s, err := c.CoreV1().Secrets("kube-system").Get(ctx, SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.OwnerReferences) != 1 {
		t.Fatalf("owner references %+v, want one", s.OwnerReferences)
	}
	ref := s.OwnerReferences[0]
	if ref.APIVersion != "v1" || ref.Kind != "Secret" || !strings.HasPrefix(ref.Name, bootstrapapi.BootstrapTokenSecretPrefix) || ref.UID != types.UID("uid-"+ref.Name) {
		t.Errorf("owner reference %+v, want the bootstrap token Secret by name and UID", ref)
	}
	tokSecret, err := c.CoreV1().Secrets("kube-system").Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("owner token: %v", err)
	}
	if tokSecret.Type != bootstrapapi.SecretTypeBootstrapToken {
		t.Errorf("owner type %q", tokSecret.Type)
	}
	tok, err := bootstrap.TokenFromSecret(tokSecret)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := tok.Expires.Sub(before); ttl < TokenTTL-time.Minute || ttl > TokenTTL+time.Minute {
		t.Errorf("token expires %s after the upload, want %s", ttl, TokenTTL)
	}
	if len(tok.Usages) != 0 {
		t.Errorf("the TTL token has usages %v: it must not authenticate or sign", tok.Usages)
	}

	role, err := c.RbacV1().Roles("kube-system").Get(ctx, RoleName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRule := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{SecretName}}
	if len(role.Rules) != 1 || !equalRule(role.Rules[0], wantRule) {
		t.Errorf("role rules %+v, want only %+v", role.Rules, wantRule)
	}
	rb, err := c.RbacV1().RoleBindings("kube-system").Get(ctx, RoleName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != RoleName || len(rb.Subjects) != 1 ||
		rb.Subjects[0].Kind != rbacv1.GroupKind || rb.Subjects[0].Name != "system:bootstrappers:kubeadm:default-node-token" {
		t.Errorf("role binding %+v %+v", rb.RoleRef, rb.Subjects)
	}

	// A re-upload moves the Secret to a new token: the old key no longer decrypts it.
	key2 := mustKey(t)
	if err := Upload(ctx, kubeclienttest.Wrap(c), &config.Config{}, src, key2); err != nil {
		t.Fatal(err)
	}
	s2, _ := c.CoreV1().Secrets("kube-system").Get(ctx, SecretName, metav1.GetOptions{})
	if len(s2.OwnerReferences) != 1 || s2.OwnerReferences[0].Name == ref.Name {
		t.Errorf("after a re-upload the owners are %+v, want only the new token", s2.OwnerReferences)
	}
}

func equalRule(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.Verbs, b.Verbs) && slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) && slices.Equal(a.ResourceNames, b.ResourceNames)
}

func TestDownloadWrongKeyWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	writeShared(t, src)
	c := newClient()
	if err := Upload(ctx, kubeclienttest.Wrap(c), &config.Config{}, src, mustKey(t)); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "pki")
	w := &countingWriter{Writer: fsutil.NewDisk(nil)}
	err := Download(ctx, kubeclienttest.Wrap(c), dst, mustKey(t), w)
	if err == nil || !strings.Contains(err.Error(), "the certificate key does not decrypt kube-system/kubeadm-certs") ||
		!strings.Contains(err.Error(), "kubestrap init phase upload-certs --upload-certs") {
		t.Errorf("wrong key: %v", err)
	}
	if w.n != 0 {
		t.Errorf("a wrong key wrote %d files", w.n)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Errorf("a wrong key created %s", dst)
	}
}

func TestDownloadMissingSecret(t *testing.T) {
	t.Parallel()
	w := &countingWriter{Writer: fsutil.NewDisk(nil)}
	err := Download(context.Background(), kubeclienttest.Wrap(newClient()), t.TempDir(), mustKey(t), w)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "re-upload") {
		t.Errorf("missing Secret: %v", err)
	}
	if w.n != 0 {
		t.Errorf("wrote %d files", w.n)
	}
}

func TestUploadMissingFileChangesNothing(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeShared(t, src)
	os.Remove(filepath.Join(src, "etcd/ca.key"))
	c := newClient()
	err := Upload(context.Background(), kubeclienttest.Wrap(c), &config.Config{}, src, mustKey(t))
	if err == nil || !strings.Contains(err.Error(), "etcd/ca.key") {
		t.Errorf("missing etcd/ca.key: %v", err)
	}
	if n := len(c.Actions()); n != 0 {
		t.Errorf("a failed upload made %d API calls: %v", n, c.Actions())
	}
}

func TestExternalEtcd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	writeShared(t, src)
	ext := t.TempDir()
	for _, n := range []string{"ca.pem", "client.pem", "client-key.pem"} {
		if err := os.WriteFile(filepath.Join(ext, n), []byte("external "+n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{}
	cfg.Cluster.Etcd.External = &config.ExternalEtcd{CAFile: filepath.Join(ext, "ca.pem"), CertFile: filepath.Join(ext, "client.pem"), KeyFile: filepath.Join(ext, "client-key.pem")}
	c := newClient()
	key := mustKey(t)
	if err := Upload(ctx, kubeclienttest.Wrap(c), cfg, src, key); err != nil {
		t.Fatal(err)
	}
	s, _ := c.CoreV1().Secrets("kube-system").Get(ctx, SecretName, metav1.GetOptions{})
	for _, k := range []string{ExternalEtcdCA, ExternalEtcdCert, ExternalEtcdKey} {
		if _, ok := s.Data[k]; !ok {
			t.Errorf("no %s in the Secret", k)
		}
	}
	if _, ok := s.Data["etcd-ca.key"]; ok {
		t.Error("external etcd: the Secret carries a local etcd CA")
	}
	dst := t.TempDir()
	if err := Download(ctx, kubeclienttest.Wrap(c), filepath.Join(dst, "pki"), key, fsutil.NewDisk(nil)); err == nil || !strings.Contains(err.Error(), "etcd.external.caFile") {
		t.Errorf("download without external paths: %v", err)
	}
	keyPath := filepath.Join(dst, "etcd", "client-key.pem")
	if err := Download(ctx, kubeclienttest.Wrap(c), filepath.Join(dst, "pki"), key, fsutil.NewDisk(nil),
		ExternalEtcd(filepath.Join(dst, "etcd", "ca.pem"), filepath.Join(dst, "etcd", "client.pem"), keyPath)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(keyPath); string(got) != "external client-key.pem" {
		t.Errorf("external key = %q", got)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("external key mode: %v %v", fi, err)
	}

	// An external etcd with a CA but no client certificate shares the CA alone.
	cfg.Cluster.Etcd.External = &config.ExternalEtcd{CAFile: filepath.Join(ext, "ca.pem")}
	if err := Upload(ctx, kubeclienttest.Wrap(c), cfg, src, key); err != nil {
		t.Fatal(err)
	}
	if got := Keys(cfg); strings.Contains(strings.Join(got, ","), ExternalEtcdKey) || !strings.Contains(strings.Join(got, ","), ExternalEtcdCA) {
		t.Errorf("keys with a CA only: %v", got)
	}
	dst = t.TempDir()
	if err := Download(ctx, kubeclienttest.Wrap(c), filepath.Join(dst, "pki"), key, fsutil.NewDisk(nil), ExternalEtcd(filepath.Join(dst, "ca.pem"), "", "")); err != nil {
		t.Errorf("CA-only download: %v", err)
	}
}

// countingWriter counts writes that reach the disk.
type countingWriter struct {
	fsutil.Writer
	n int
}

func (w *countingWriter) WriteFile(path string, data []byte, perm fs.FileMode, opts ...fsutil.Option) error {
	w.n++
	return w.Writer.WriteFile(path, data, perm, opts...)
}

// kube-apiserver's encryption configuration goes with the certificates (every apiserver needs the
// same keys): uploaded encrypted under its own data key, written 0600 where the joining node's
// apiserver reads it; a download that does not ask for it writes only kubeadm's files.
func TestEncryptionConfigHandOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	writeShared(t, src)
	encSrc := filepath.Join(t.TempDir(), "encryption-config.yaml")
	plain := []byte("kind: EncryptionConfiguration\n# secretbox key\n")
	if err := os.WriteFile(encSrc, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient()
	key := mustKey(t)
	if err := Upload(ctx, kubeclienttest.Wrap(c), &config.Config{}, src, key, EncryptionConfig(encSrc)); err != nil {
		t.Fatal(err)
	}
	s, err := c.CoreV1().Secrets("kube-system").Get(ctx, SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sealed, ok := s.Data[EncryptionConfigKey]; !ok || bytes.Contains(sealed, plain) {
		t.Fatalf("the Secret's %s: present %v, in the clear %v", EncryptionConfigKey, ok, bytes.Contains(sealed, plain))
	}
	encDst := filepath.Join(t.TempDir(), "kubestrap", "encryption-config.yaml")
	if err := Download(ctx, kubeclienttest.Wrap(c), filepath.Join(t.TempDir(), "pki"), key, fsutil.NewDisk(nil), EncryptionConfig(encDst)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(encDst)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("downloaded encryption configuration %q, %v; want the uploaded one", got, err)
	}
	if fi, _ := os.Stat(encDst); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// An encryption configuration of another cluster on the node is refused, like a CA.
	if err := os.WriteFile(encDst, []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Download(ctx, kubeclienttest.Wrap(c), filepath.Join(t.TempDir(), "pki"), key, fsutil.NewDisk(nil), EncryptionConfig(encDst)); err == nil || !strings.Contains(err.Error(), "differs from the uploaded "+EncryptionConfigKey) {
		t.Errorf("err %v, want the differing file refused", err)
	}
}
