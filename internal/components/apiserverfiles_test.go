package components

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

func TestEnsureAPIServerFilesCreatesOnceAndKeeps(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	cfg := baseConfig()

	var log bytes.Buffer
	if err := EnsureAPIServerFiles(cfg, p, FileOptions{Log: &log}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[control-plane] Writing encryption-at-rest configuration to " + p.EncryptionConfig(),
		"[control-plane] Writing audit policy to " + p.AuditPolicy(),
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	for path, want := range map[string]fs.FileMode{
		p.EncryptionConfig():                   0o600,
		p.AuditPolicy():                        0o600,
		p.KubestrapConfigDir():                 fs.ModeDir | 0o700,
		p.AuditLogDir():                        fs.ModeDir | 0o700,
		filepath.Dir(p.AuditPolicy()) + "/../": fs.ModeDir | 0o755,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	enc1, _ := os.ReadFile(p.EncryptionConfig())
	pol1, _ := os.ReadFile(p.AuditPolicy())

	log.Reset()
	if err := EnsureAPIServerFiles(cfg, p, FileOptions{Log: &log}); err != nil {
		t.Fatal(err)
	}
	enc2, _ := os.ReadFile(p.EncryptionConfig())
	pol2, _ := os.ReadFile(p.AuditPolicy())
	if !bytes.Equal(enc1, enc2) || !bytes.Equal(pol1, pol2) {
		t.Error("a second run changed the files")
	}
	for _, want := range []string{
		"[control-plane] Using existing encryption-at-rest configuration " + p.EncryptionConfig(),
		"[control-plane] Using existing audit policy " + p.AuditPolicy(),
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("second run's log lacks %q:\n%s", want, log.String())
		}
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(p.KubestrapConfigDir())
	if len(entries) != 2 {
		t.Errorf("%s holds %d entries, want 2", p.KubestrapConfigDir(), len(entries))
	}
}

func TestEncryptionConfigParsesBack(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	if err := EnsureAPIServerFiles(baseConfig(), p, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p.EncryptionConfig())
	if err != nil {
		t.Fatal(err)
	}
	ec, err := parseEncryptionConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ec.Resources) != 1 {
		t.Fatalf("resources = %+v, want one entry", ec.Resources)
	}
	r := ec.Resources[0]
	if len(r.Resources) != 1 || r.Resources[0] != "secrets" {
		t.Errorf("resources = %q, want [secrets]", r.Resources)
	}
	if len(r.Providers) != 2 || r.Providers[0].Secretbox == nil || r.Providers[1].Identity == nil {
		t.Fatalf("providers = %+v, want secretbox then identity", r.Providers)
	}
	keys := r.Providers[0].Secretbox.Keys
	if len(keys) != 1 || keys[0].Name != "key1" {
		t.Fatalf("keys = %+v, want one named key1", keys)
	}
	key, err := base64.StdEncoding.DecodeString(keys[0].Secret)
	if err != nil || len(key) != 32 {
		t.Errorf("key1 decodes to %d bytes (err %v), want 32", len(key), err)
	}

	// kube-apiserver's own loader builds the transformers from it, as at start-up.
	loaded, err := encryptionconfig.LoadEncryptionConfig(context.Background(), p.EncryptionConfig(), false, "test")
	if err != nil {
		t.Fatalf("kube-apiserver would reject the encryption configuration: %v", err)
	}
	if len(loaded.Transformers) != 1 {
		t.Errorf("kube-apiserver built %d transformers, want 1 (secrets)", len(loaded.Transformers))
	}

	// Two clusters never share a key.
	p2 := paths.MustUnder(t.TempDir())
	if err := EnsureAPIServerFiles(baseConfig(), p2, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	other, _ := os.ReadFile(p2.EncryptionConfig())
	if bytes.Equal(data, other) {
		t.Error("two runs generated the same key")
	}
}

// TestAuditPolicyLoads runs the default policy through the apiserver's own loader, which
// validates it as kube-apiserver does at start-up.
func TestAuditPolicyLoads(t *testing.T) {
	t.Parallel()
	data, err := auditPolicyYAML()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.LoadPolicyFromBytes(data)
	if err != nil {
		t.Fatalf("kube-apiserver would reject the audit policy: %v\n%s", err, data)
	}
	if len(pol.Rules) == 0 {
		t.Error("no rules")
	}
	// Secrets must never be logged with their bodies: the first rule matching them is Metadata.
	text := string(data)
	if i, j := strings.Index(text, "- secrets"), strings.Index(text, "level: Request\n"); i < 0 || j < 0 || i > j {
		t.Errorf("secrets are not covered at Metadata before the Request rule:\n%s", text)
	}
}

func TestEnsureAPIServerFilesDryRun(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := paths.MustUnder(root)
	var log bytes.Buffer
	if err := EnsureAPIServerFiles(baseConfig(), p, FileOptions{Files: fsutil.NewDryRun(&log), Log: &log}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("dry run wrote under the root: %v", entries)
	}
	out := log.String()
	for _, want := range []string{
		"[dryrun] Would write file " + p.EncryptionConfig(),
		"[dryrun] Would write file " + p.AuditPolicy(),
		"kind: Policy",
		"[dryrun] Would create directory " + p.AuditLogDir(),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"secretbox", "secret:", "key1"} {
		if strings.Contains(out, secret) {
			t.Errorf("dry-run output shows the encryption configuration (%q):\n%s", secret, out)
		}
	}
}

func TestEnsureAPIServerFilesRejectsBrokenEncryptionConfig(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"not yaml":      "{{{",
		"unknown field": "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\nextra: 1\n",
		"wrong kind":    "apiVersion: v1\nkind: ConfigMap\n",
		"no resources":  "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := paths.MustUnder(t.TempDir())
			if err := os.MkdirAll(p.KubestrapConfigDir(), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p.EncryptionConfig(), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			err := EnsureAPIServerFiles(baseConfig(), p, FileOptions{})
			if err == nil || !strings.Contains(err.Error(), p.EncryptionConfig()) {
				t.Fatalf("error = %v, want one naming %s", err, p.EncryptionConfig())
			}
			if got, _ := os.ReadFile(p.EncryptionConfig()); string(got) != content {
				t.Error("the broken file was replaced")
			}
		})
	}
}

func TestEnsureAPIServerFilesKeepsUserAuditPolicy(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	mine := "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n"
	if err := os.MkdirAll(p.KubestrapConfigDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.AuditPolicy(), []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := EnsureAPIServerFiles(baseConfig(), p, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p.AuditPolicy()); string(got) != mine {
		t.Errorf("audit policy rewritten:\n%s", got)
	}
}

// Files that extraArgs point elsewhere belong to the user.
func TestEnsureAPIServerFilesHonoursExtraArgs(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	cfg := baseConfig()
	cfg.Cluster.APIServer.ExtraArgs = []config.Arg{
		{Name: "encryption-provider-config", Value: "/etc/kms/encryption.yaml"},
		{Name: "audit-policy-file", Value: "/etc/audit/policy.yaml"},
		{Name: "audit-log-path", Value: "-"},
	}
	if err := EnsureAPIServerFiles(cfg, p, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{p.EncryptionConfig(), p.AuditPolicy(), p.AuditLogDir()} {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s written although extraArgs point elsewhere", path)
		}
	}
}

func TestWriteFileOnceNeverReplaces(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d", "f")
	created, err := writeFileOnce(fsutil.NewDisk(nil), path, []byte("first"))
	if err != nil || !created {
		t.Fatalf("first write: created=%v err=%v", created, err)
	}
	created, err = writeFileOnce(fsutil.NewDisk(nil), path, []byte("second"))
	if err != nil || created {
		t.Fatalf("second write: created=%v err=%v, want not created", created, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("content = %q, want first", got)
	}
}
