// Package copycerts owns the certificate hand-off between control-plane nodes: the cluster-wide
// CA keys, the service-account key pair and the etcd CA (or the external etcd client files),
// encrypted with AES-256-GCM under a 32-byte "certificate key" into the Secret
// kube-system/kubeadm-certs, which a short-lived bootstrap token owns so that the garbage
// collector deletes it when the token expires. The scheme, the Secret's name and data keys, the
// Role and the token's lifetime are kubeadm's (KA/phases/copycerts), so kubeadm's documentation
// of "--upload-certs" and "--certificate-key" applies to kubestrap unchanged.
package copycerts

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/pki"
)

const (
	// SecretName is the Secret in kube-system that holds the encrypted files (kubeadm's name).
	SecretName = "kubeadm-certs"
	// RoleName names the Role and RoleBinding that let bootstrap tokens read SecretName.
	RoleName = "kubeadm:kubeadm-certs"
	// TokenTTL is how long the uploaded certificates live: the owning token expires after it,
	// the token cleaner deletes the token and the garbage collector the Secret (kubeadm's 2 h).
	TokenTTL = 2 * time.Hour
	// TokenTTLText is TokenTTL as messages say it.
	TokenTTLText = "2 hours"
	// TokenDescription is the owning token's description (kubeadm's), so `token list` says what
	// the token is for.
	TokenDescription = "Proxy for managing TTL for the kubeadm-certs secret"
	// KeyBytes is the size of the certificate key: AES-256.
	KeyBytes = 32
)

// The data keys of the external etcd client files (kubeadm's names). The other keys are the file
// names relative to the certificates directory with "/" replaced by "-" ("etcd-ca.crt").
const (
	ExternalEtcdCA   = "external-etcd-ca.crt"
	ExternalEtcdCert = "external-etcd.crt"
	ExternalEtcdKey  = "external-etcd.key"
)

// keyHelp is how every key error ends: where a valid key comes from.
const keyHelp = "give the 64 hex characters printed by `kubestrap init --upload-certs` or `kubestrap certs certificate-key`"

// reuploadHelp is how every download error that a new upload cures ends.
const reuploadHelp = "re-upload with `kubestrap init phase upload-certs --upload-certs` on a control-plane node and use the key it prints"

// NewKey returns a new random certificate key as the 64 hex characters users pass around.
func NewKey() (string, error) {
	b := make([]byte, KeyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a certificate key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ParseKey decodes a certificate key. The error never repeats the key: a wrong one is usually a
// real one mangled by a shell, and errors end up in logs.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no certificate key: " + keyHelp)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the certificate key is not hexadecimal (%d characters, <redacted>): %s", len(s), keyHelp)
	}
	if len(b) != KeyBytes {
		return nil, fmt.Errorf("the certificate key has %d hex characters, not %d: %s", len(s), 2*KeyBytes, keyHelp)
	}
	return b, nil
}

// file is one shared file: its data key in the Secret, where it lives, and its mode on disk.
type file struct {
	key  string
	path string
	perm fs.FileMode
}

// sharedFiles are the files a control-plane node shares with the others, as kubeadm's
// getDataFilesForSecret lists them: the CAs' pairs, the service-account pair, and either the
// local etcd CA or the external etcd client files.
func sharedFiles(cfg *config.Config, certDir string) []file {
	in := func(name string, perm fs.FileMode) file {
		return file{key: strings.ReplaceAll(name, "/", "-"), path: filepath.Join(certDir, name), perm: perm}
	}
	files := []file{
		in("ca.crt", pki.CertFileMode), in("ca.key", pki.KeyFileMode),
		in("front-proxy-ca.crt", pki.CertFileMode), in("front-proxy-ca.key", pki.KeyFileMode),
		in(pki.SAKeyFile, pki.KeyFileMode), in(pki.SAPubFile, pki.CertFileMode),
	}
	if ext := cfg.Cluster.Etcd.External; ext != nil {
		// The files the configuration names (none for an etcd without TLS, the CA alone for
		// one without client certificates), at the paths given: a caller under a root dir
		// passes them mapped into it.
		for _, f := range []file{
			{key: ExternalEtcdCA, path: ext.CAFile, perm: pki.CertFileMode},
			{key: ExternalEtcdCert, path: ext.CertFile, perm: pki.CertFileMode},
			{key: ExternalEtcdKey, path: ext.KeyFile, perm: pki.KeyFileMode},
		} {
			if f.path != "" {
				files = append(files, f)
			}
		}
		return files
	}
	return append(files, in("etcd/ca.crt", pki.CertFileMode), in("etcd/ca.key", pki.KeyFileMode))
}

// Upload encrypts the shared files under certDir (a host path) with key and stores them in
// kube-system/kubeadm-certs, owned by a new bootstrap token that expires after TokenTTL, and
// lets bootstrap tokens read that Secret. Every file is read and encrypted before anything is
// sent, so a missing file changes nothing in the cluster. Each upload replaces the Secret's data
// and its owner: the certificates of an earlier upload are readable with the new key only.
func Upload(ctx context.Context, client kubeclient.Interface, cfg *config.Config, certDir string, key []byte, opts ...Option) error {
	var o downloadOptions
	for _, f := range opts {
		f(&o)
	}
	if len(key) != KeyBytes {
		return fmt.Errorf("the certificate key has %d bytes, not %d: %s", len(key), KeyBytes, keyHelp)
	}
	files := sharedFiles(cfg, certDir)
	if o.encryptionConfig != "" {
		files = append(files, file{key: EncryptionConfigKey, path: o.encryptionConfig, perm: pki.KeyFileMode})
	}
	data := make(map[string][]byte, len(files))
	for _, f := range files {
		plain, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("reading %s for upload: %w (run `kubestrap init phase certs all` first, or copy the shared certificates there)", f.path, err)
		}
		sealed, err := encrypt(plain, key)
		if err != nil {
			return err
		}
		data[f.key] = sealed
	}

	token, err := bootstrap.NewToken("", TokenDescription, TokenTTL, nil, nil, time.Now())
	if err != nil {
		return err
	}
	owner, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, token.ToSecret(), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the bootstrap token that owns %s/%s: %w", metav1.NamespaceSystem, SecretName, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: SecretName, Namespace: metav1.NamespaceSystem,
			// The garbage collector deletes the Secret once the token cleaner has deleted the
			// expired token: the certificate keys do not outlive the token's TTL.
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, corev1.SchemeGroupVersion.WithKind("Secret"))},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if err := kubeclient.Apply(ctx, client.CoreV1().Secrets(metav1.NamespaceSystem), secret); err != nil {
		return err
	}
	if err := kubeclient.Apply(ctx, client.RbacV1().Roles(metav1.NamespaceSystem), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: RoleName, Namespace: metav1.NamespaceSystem},
		Rules: []rbacv1.PolicyRule{{
			Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: []string{SecretName},
		}},
	}); err != nil {
		return err
	}
	return kubeclient.Apply(ctx, client.RbacV1().RoleBindings(metav1.NamespaceSystem), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: RoleName, Namespace: metav1.NamespaceSystem},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: bootstrap.NodeBootstrapTokenAuthGroup}},
	})
}

// Option adjusts Download (and Upload: EncryptionConfig).
type Option func(*downloadOptions)

type downloadOptions struct{ externalCA, externalCert, externalKey, encryptionConfig string }

// EncryptionConfigKey is the data key of kube-apiserver's encryption-at-rest configuration, which
// kubestrap hands over beside kubeadm's files: every apiserver of a cluster must hold the same
// keys, or a Secret written through one cannot be read through another.
const EncryptionConfigKey = "kubestrap-encryption-config.yaml"

// EncryptionConfig names kube-apiserver's encryption configuration (a host path, the file its
// --encryption-provider-config names): Upload includes it, Download writes it there (0600) when
// the Secret has it, checked and compared like the other files.
func EncryptionConfig(path string) Option {
	return func(o *downloadOptions) { o.encryptionConfig = path }
}

// ExternalEtcd names where the external etcd files of the upload go (the joining node's
// etcd.external caFile, certFile, keyFile, mapped into its root dir). Without it an upload that
// holds them is refused.
func ExternalEtcd(caFile, certFile, keyFile string) Option {
	return func(o *downloadOptions) { o.externalCA, o.externalCert, o.externalKey = caFile, certFile, keyFile }
}

// Download reads kube-system/kubeadm-certs, decrypts it with key and writes the shared files under
// certDir (a host path) through w: keys 0600, certificates 0644. Every entry is decrypted, and
// every file already on disk compared, before the first write, so a wrong key, a missing or
// expired Secret, or a node that holds another cluster's CA leaves the disk as it was. A file
// that already holds the same bytes is kept.
func Download(ctx context.Context, client kubeclient.Interface, certDir string, key []byte, w fsutil.Writer, opts ...Option) error {
	var o downloadOptions
	for _, f := range opts {
		f(&o)
	}
	if len(key) != KeyBytes {
		return fmt.Errorf("the certificate key has %d bytes, not %d: %s", len(key), KeyBytes, keyHelp)
	}
	secret, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, SecretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("Secret %s/%s does not exist: the uploaded certificates are deleted %s after an upload, or were never uploaded; %s", metav1.NamespaceSystem, SecretName, TokenTTLText, reuploadHelp)
	case err != nil:
		return fmt.Errorf("reading Secret %s/%s: %w", metav1.NamespaceSystem, SecretName, err)
	case secret.DeletionTimestamp != nil:
		return fmt.Errorf("Secret %s/%s is being deleted (its owning token expired); %s", metav1.NamespaceSystem, SecretName, reuploadHelp)
	}

	// The external etcd files the upload holds go where this node's configuration says; the
	// local etcd CA otherwise.
	var cfg config.Config
	external := false
	ext := &config.ExternalEtcd{}
	for _, e := range []struct {
		key, path, field string
		dst              *string
	}{
		{ExternalEtcdCA, o.externalCA, "caFile", &ext.CAFile},
		{ExternalEtcdCert, o.externalCert, "certFile", &ext.CertFile},
		{ExternalEtcdKey, o.externalKey, "keyFile", &ext.KeyFile},
	} {
		if _, ok := secret.Data[e.key]; !ok {
			continue
		}
		external = true
		if e.path == "" {
			return fmt.Errorf("Secret %s/%s holds the external etcd file %s: set etcd.external.%s in this node's configuration so it has somewhere to go", metav1.NamespaceSystem, SecretName, e.key, e.field)
		}
		*e.dst = e.path
	}
	if external {
		cfg.Cluster.Etcd.External = ext
	}
	files := sharedFiles(&cfg, certDir)
	if _, ok := secret.Data[EncryptionConfigKey]; ok && o.encryptionConfig != "" {
		files = append(files, file{key: EncryptionConfigKey, path: o.encryptionConfig, perm: pki.KeyFileMode})
	}
	plain := make([][]byte, len(files))
	for i, f := range files {
		sealed, ok := secret.Data[f.key]
		if !ok {
			return fmt.Errorf("Secret %s/%s has no %q: it was not written by an upload of this kind; %s", metav1.NamespaceSystem, SecretName, f.key, reuploadHelp)
		}
		if plain[i], err = decrypt(sealed, key); err != nil {
			return fmt.Errorf("the certificate key does not decrypt %s/%s: %v; %s", metav1.NamespaceSystem, SecretName, err, reuploadHelp)
		}
	}
	var write []int
	for i, f := range files {
		cur, err := os.ReadFile(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			write = append(write, i)
		case err != nil:
			return fmt.Errorf("reading %s: %w", f.path, err)
		case !bytes.Equal(cur, plain[i]):
			return fmt.Errorf("%s exists and differs from the uploaded %s: this node holds another cluster's certificates; run `kubestrap reset` on it first, or remove the file if it is a leftover", f.path, f.key)
		}
	}
	for _, i := range write {
		f := files[i]
		if err := w.WriteFile(f.path, plain[i], f.perm); err != nil {
			return err
		}
	}
	return nil
}

// Keys are the data keys an upload with cfg stores, sorted: what `init phase upload-certs
// --dry-run` lists and tests compare.
func Keys(cfg *config.Config) []string {
	var out []string
	for _, f := range sharedFiles(cfg, "") {
		out = append(out, f.key)
	}
	slices.Sort(out)
	return out
}

// encrypt seals data with AES-256-GCM under key, the random nonce prepended (kubeadm's format).
func encrypt(data, key []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generating a nonce: %w", err)
	}
	return gcm.Seal(nonce, nonce, data, nil), nil
}

// decrypt opens what encrypt sealed; a wrong key fails GCM's authentication.
func decrypt(sealed, key []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("the data is shorter than a nonce")
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
	if err != nil {
		return nil, errors.New("authentication failed (a wrong key, or the Secret was changed)")
	}
	return plain, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("certificate key: %w", err)
	}
	return cipher.NewGCM(block)
}
