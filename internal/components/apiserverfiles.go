package components

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// FileOptions controls EnsureAPIServerFiles.
type FileOptions struct {
	// Files writes the files; nil is the disk, reporting on Log.
	Files fsutil.Writer
	// Log receives "[control-plane]" progress lines; nil discards them.
	Log io.Writer
}

// encryptionKeyBytes is the key size secretbox (XSalsa20-Poly1305) requires.
const encryptionKeyBytes = 32

// Headers written above the generated YAML, for the operator who opens the file.
const (
	encryptionConfigHeader = "# Written by kubestrap. Secrets in etcd are encrypted with these keys: never delete\n" +
		"# this file or replace a key that is in use, or those secrets become unreadable.\n"
	auditPolicyHeader = "# Written by kubestrap. Edit freely: kubestrap keeps an existing policy as it is.\n"
)

// EnsureAPIServerFiles writes the files kubestrap's kube-apiserver flags point at beyond
// kubeadm's: the encryption-at-rest configuration, the audit policy and the audit log directory.
// Files that exist are kept as they are; in particular the encryption configuration is created
// exactly once, because a new key would make every secret already in etcd unreadable. A file that
// apiServer.extraArgs points elsewhere is the user's to provide and is not written.
func EnsureAPIServerFiles(cfg *config.Config, p paths.Paths, o FileOptions) error {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	w := fsutil.OrDisk(o.Files, o.Log)
	args := ArgMap(APIServer(cfg, p).Args)

	if f := args["encryption-provider-config"]; f == p.EncryptionConfig() {
		if err := ensureEncryptionConfig(w, f, log); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(log, "[control-plane] kube-apiserver uses --encryption-provider-config=%s from apiServer.extraArgs; not writing %s\n", f, p.EncryptionConfig())
	}

	if f := args["audit-policy-file"]; f == p.AuditPolicy() {
		if err := ensureAuditPolicy(w, f, log); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(log, "[control-plane] kube-apiserver uses --audit-policy-file=%s from apiServer.extraArgs; not writing %s\n", f, p.AuditPolicy())
	}

	// Only our own log path: "-" means stdout, and a user's path is the user's to prepare.
	if args["audit-log-path"] == p.AuditLog() {
		if err := w.Mkdir(p.AuditLogDir(), 0o700); err != nil {
			return fmt.Errorf("creating audit log directory: %w", err)
		}
	}
	return nil
}

func ensureEncryptionConfig(w fsutil.Writer, path string, log io.Writer) error {
	existing, err := readExisting(path)
	if err != nil {
		return err
	}
	if existing == nil {
		fmt.Fprintf(log, "[control-plane] Writing encryption-at-rest configuration to %s\n", path)
		data, err := newEncryptionConfig()
		if err != nil {
			return err
		}
		created, err := writeFileOnce(w, path, data, fsutil.Describe("contents not shown: it holds the encryption key"))
		if err != nil {
			return fmt.Errorf("writing encryption-at-rest configuration %s: %w", path, err)
		}
		if created {
			return nil
		}
		// Someone else created it since we looked; theirs may already be in use, so it wins.
		if existing, err = readExisting(path); err != nil {
			return err
		}
	}
	if _, err := parseEncryptionConfig(existing); err != nil {
		return fmt.Errorf("existing encryption-at-rest configuration %s: %w (fix it; do not delete it while secrets encrypted with its keys are in etcd)", path, err)
	}
	fmt.Fprintf(log, "[control-plane] Using existing encryption-at-rest configuration %s\n", path)
	return nil
}

func ensureAuditPolicy(w fsutil.Writer, path string, log io.Writer) error {
	existing, err := readExisting(path)
	if err != nil {
		return err
	}
	if existing == nil {
		data, err := auditPolicyYAML()
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "[control-plane] Writing audit policy to %s\n", path)
		created, err := writeFileOnce(w, path, data, fsutil.ShowContent())
		if err != nil {
			return fmt.Errorf("writing audit policy %s: %w", path, err)
		}
		if created {
			return nil
		}
		if existing, err = readExisting(path); err != nil {
			return err
		}
	}
	// Only a sanity check: the apiserver validates the rules, but a file that is not a Policy
	// at all would otherwise surface as a crash-looping apiserver.
	var pol auditv1.Policy
	if err := yaml.Unmarshal(existing, &pol); err != nil {
		return fmt.Errorf("existing audit policy %s: %w", path, err)
	}
	if pol.Kind != "Policy" || pol.APIVersion != auditv1.SchemeGroupVersion.String() {
		return fmt.Errorf("existing audit policy %s: want apiVersion %s, kind Policy; got %q, %q",
			path, auditv1.SchemeGroupVersion, pol.APIVersion, pol.Kind)
	}
	fmt.Fprintf(log, "[control-plane] Using existing audit policy %s\n", path)
	return nil
}

// newEncryptionConfig encrypts secrets with secretbox under one fresh key: authenticated encryption,
// which the upstream documentation prefers to aescbc (CBC is open to padding-oracle attacks), and
// needs no external KMS. identity comes last so
// that secrets written before encryption was turned on (or by a plain kubeadm apiserver) stay
// readable; they are encrypted when next written.
func newEncryptionConfig() ([]byte, error) {
	key := make([]byte, encryptionKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating encryption key: %w", err)
	}
	ec := apiserverv1.EncryptionConfiguration{
		TypeMeta: metav1.TypeMeta{
			APIVersion: apiserverv1.SchemeGroupVersion.String(),
			Kind:       "EncryptionConfiguration",
		},
		Resources: []apiserverv1.ResourceConfiguration{{
			Resources: []string{"secrets"},
			Providers: []apiserverv1.ProviderConfiguration{
				{Secretbox: &apiserverv1.SecretboxConfiguration{Keys: []apiserverv1.Key{{
					Name:   "key1",
					Secret: base64.StdEncoding.EncodeToString(key),
				}}}},
				{Identity: &apiserverv1.IdentityConfiguration{}},
			},
		}},
	}
	data, err := yaml.Marshal(&ec)
	if err != nil {
		return nil, fmt.Errorf("encoding encryption-at-rest configuration: %w", err)
	}
	return append([]byte(encryptionConfigHeader), data...), nil
}

// parseEncryptionConfig decodes strictly, so a typo in a hand-edited file is reported here rather
// than by an apiserver that will not start.
func parseEncryptionConfig(data []byte) (*apiserverv1.EncryptionConfiguration, error) {
	var ec apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(data, &ec); err != nil {
		return nil, err
	}
	if ec.APIVersion != apiserverv1.SchemeGroupVersion.String() || ec.Kind != "EncryptionConfiguration" {
		return nil, fmt.Errorf("want apiVersion %s, kind EncryptionConfiguration; got %q, %q",
			apiserverv1.SchemeGroupVersion, ec.APIVersion, ec.Kind)
	}
	if len(ec.Resources) == 0 {
		return nil, errors.New("no resources configured")
	}
	return &ec, nil
}

// defaultAuditPolicy follows the spirit of kube-up's and GKE's policies: drop the high-volume,
// low-value traffic of node heartbeats, leader election, proxies and health checks; never record
// bodies that can hold credentials; record the body of every other write; and the metadata of
// everything else. The first matching rule wins.
func defaultAuditPolicy() *auditv1.Policy {
	core := func(res ...string) auditv1.GroupResources { return auditv1.GroupResources{Group: "", Resources: res} }
	leases := auditv1.GroupResources{Group: "coordination.k8s.io", Resources: []string{"leases"}}
	return &auditv1.Policy{
		TypeMeta: metav1.TypeMeta{
			APIVersion: auditv1.SchemeGroupVersion.String(),
			Kind:       "Policy",
		},
		// A RequestReceived event only duplicates the ResponseComplete one that follows.
		OmitStages: []auditv1.Stage{auditv1.StageRequestReceived},
		Rules: []auditv1.PolicyRule{
			{
				Level: auditv1.LevelNone,
				Users: []string{"system:kube-proxy"},
				Verbs: []string{"watch"},
				Resources: []auditv1.GroupResources{
					core("endpoints", "services", "services/status"),
					{Group: "discovery.k8s.io", Resources: []string{"endpointslices"}},
				},
			},
			// Users and userGroups of one rule must both match, hence two rules.
			{
				Level:     auditv1.LevelNone,
				Users:     []string{"system:unsecured"},
				Verbs:     []string{"get", "list"},
				Resources: []auditv1.GroupResources{core("events"), leases},
			},
			{
				Level:      auditv1.LevelNone,
				UserGroups: []string{"system:nodes"},
				Verbs:      []string{"get", "list"},
				Resources:  []auditv1.GroupResources{core("events"), leases},
			},
			{
				// Leader election renews a lease every couple of seconds.
				Level:      auditv1.LevelNone,
				Users:      []string{"system:kube-controller-manager", "system:kube-scheduler", "system:apiserver"},
				Verbs:      []string{"get", "update"},
				Namespaces: []string{"kube-system"},
				Resources:  []auditv1.GroupResources{leases},
			},
			{
				Level:           auditv1.LevelNone,
				NonResourceURLs: []string{"/healthz*", "/livez*", "/readyz*", "/version"},
			},
			{
				// Secrets, config maps and token requests/reviews carry credentials in their
				// bodies.
				Level: auditv1.LevelMetadata,
				Resources: []auditv1.GroupResources{
					core("secrets", "configmaps", "serviceaccounts/token"),
					{Group: "authentication.k8s.io", Resources: []string{"tokenreviews"}},
				},
			},
			{
				Level: auditv1.LevelRequest,
				Verbs: []string{"create", "update", "patch", "delete", "deletecollection"},
			},
			{Level: auditv1.LevelMetadata},
		},
	}
}

func auditPolicyYAML() ([]byte, error) {
	data, err := yaml.Marshal(defaultAuditPolicy())
	if err != nil {
		return nil, fmt.Errorf("encoding audit policy: %w", err)
	}
	return append([]byte(auditPolicyHeader), data...), nil
}

// readExisting returns the file's content, or nil when it does not exist.
func readExisting(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}

// writeFileOnce creates path (mode 0600, in a 0700 directory: its parents 0755, as kubeadm's
// /etc/kubernetes; an existing directory keeps its mode, it may be shared) with data unless it
// already exists, and reports whether it did; a concurrent writer's file, possibly a key already
// in use, is never replaced.
func writeFileOnce(w fsutil.Writer, path string, data []byte, opts ...fsutil.Option) (created bool, err error) {
	if err := w.Mkdir(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	return w.CreateExclusive(path, data, 0o600, opts...)
}
