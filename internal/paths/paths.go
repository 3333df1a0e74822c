// Package paths owns every host path kubestrap touches. Each one is derived from a single root
// directory (--root-dir, "/" on a real node) so that tests, dry runs and several clusters on one
// machine never collide; no other package spells out an absolute host path.
package paths

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Host paths of kubeadm's layout, as seen with root "/". They are also the defaults that the
// kubeadm configuration format documents (certificatesDir, etcd.local.dataDir).
const (
	KubernetesDir          = "/etc/kubernetes"
	DefaultCertificatesDir = "/etc/kubernetes/pki"
	DefaultEtcdDataDir     = "/var/lib/etcd"
	KubeletDir             = "/var/lib/kubelet"
	SystemdUnitDir         = "/etc/systemd/system"
	RunDir                 = "/run/kubestrap"
	LogDir                 = "/var/log/kubestrap"
	// StateDir holds what kubestrap owns outright (component symlinks, supervisor state), so
	// reset can remove it without guessing whether something else put a file there.
	StateDir = "/var/lib/kubestrap"
	// SSLCertsDir is the host's CA bundle directory, mounted into the control-plane pods.
	SSLCertsDir = "/etc/ssl/certs"
	// SavedConfigFile is the effective configuration init ran with (InitConfiguration,
	// ClusterConfiguration, KubestrapConfiguration), which later commands fall back to when the
	// API server does not answer.
	SavedConfigFile = KubernetesDir + "/kubestrap/config.yaml"
)

// ErrNeedRoot is returned when the real root "/" is used by an unprivileged user.
var ErrNeedRoot = errors.New("writing to / needs root privileges: run as root or pass --root-dir")

// Paths resolves host paths under one root directory.
type Paths struct {
	root string
}

// New validates root and returns the paths under it. root must be an existing directory; root "/"
// additionally needs uid 0, checked here so that every command fails before it starts writing.
func New(root string, uid int) (Paths, error) {
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return Paths{}, fmt.Errorf("root dir %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Paths{}, fmt.Errorf("root dir %s does not exist: create it first (mkdir -p %s)", abs, abs)
		}
		return Paths{}, fmt.Errorf("root dir %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return Paths{}, fmt.Errorf("root dir %s is not a directory: pass a directory to --root-dir", abs)
	}
	if abs == "/" && uid != 0 {
		return Paths{}, ErrNeedRoot
	}
	return Paths{root: abs}, nil
}

// MustUnder returns Paths for root without any check; for tests and for code that already
// validated root.
func MustUnder(root string) Paths { return Paths{root: filepath.Clean(root)} }

// Root is the absolute root directory.
func (p Paths) Root() string { return p.root }

// IsRealRoot reports whether the paths are the host's own (root "/").
func (p Paths) IsRealRoot() bool { return p.root == "/" }

// Host maps an absolute host path (as kubeadm would use it) to its place under the root.
func (p Paths) Host(abs string) string {
	return filepath.Join(p.root, filepath.Clean("/"+abs))
}

// Contains reports whether path lies inside the root directory (after cleaning, not following
// symlinks).
func (p Paths) Contains(path string) bool {
	rel, err := filepath.Rel(p.root, filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func (p Paths) KubernetesDir() string { return p.Host(KubernetesDir) }

// CertDir is certificatesDir (an absolute path in the configuration) under the root.
func (p Paths) CertDir(certificatesDir string) string {
	if certificatesDir == "" {
		certificatesDir = DefaultCertificatesDir
	}
	return p.Host(certificatesDir)
}

func (p Paths) ManifestsDir() string { return p.Host(KubernetesDir + "/manifests") }

// Manifest is the static pod manifest of a component, e.g. "kube-apiserver".
func (p Paths) Manifest(component string) string {
	return filepath.Join(p.ManifestsDir(), component+".yaml")
}

// Kubeconfig is /etc/kubernetes/<name>, e.g. "admin.conf".
func (p Paths) Kubeconfig(name string) string { return filepath.Join(p.KubernetesDir(), name) }

// TmpDir is kubeadm's /etc/kubernetes/tmp (dry-run output, backups).
func (p Paths) TmpDir() string { return p.Host(KubernetesDir + "/tmp") }

// KubestrapConfigDir holds the files kubestrap adds beyond kubeadm for the apiserver: the
// encryption-at-rest configuration and the audit policy.
func (p Paths) KubestrapConfigDir() string { return p.Host(KubernetesDir + "/kubestrap") }

func (p Paths) EncryptionConfig() string {
	return filepath.Join(p.KubestrapConfigDir(), "encryption-config.yaml")
}
func (p Paths) AuditPolicy() string {
	return filepath.Join(p.KubestrapConfigDir(), "audit-policy.yaml")
}

// SavedConfig is SavedConfigFile under the root.
func (p Paths) SavedConfig() string { return p.Host(SavedConfigFile) }

func (p Paths) AuditLogDir() string { return filepath.Join(p.LogDir(), "audit") }
func (p Paths) AuditLog() string    { return filepath.Join(p.AuditLogDir(), "kube-apiserver-audit.log") }

// EtcdDataDir is etcd.local.dataDir under the root.
func (p Paths) EtcdDataDir(dataDir string) string {
	if dataDir == "" {
		dataDir = DefaultEtcdDataDir
	}
	return p.Host(dataDir)
}

func (p Paths) KubeletDir() string      { return p.Host(KubeletDir) }
func (p Paths) KubeletConfig() string   { return filepath.Join(p.KubeletDir(), "config.yaml") }
func (p Paths) KubeletFlagsEnv() string { return filepath.Join(p.KubeletDir(), "kubeadm-flags.env") }
func (p Paths) KubeletPKIDir() string   { return filepath.Join(p.KubeletDir(), "pki") }
func (p Paths) KubeletClientCert() string {
	return filepath.Join(p.KubeletPKIDir(), "kubelet-client-current.pem")
}
func (p Paths) SystemdUnitDir() string { return p.Host(SystemdUnitDir) }

// SystemdUnit is a unit file, e.g. "kube-apiserver.service".
func (p Paths) SystemdUnit(name string) string { return filepath.Join(p.SystemdUnitDir(), name) }

func (p Paths) RunDir() string { return p.Host(RunDir) }

// PidFile is the pid file of a supervised process ("supervisor", "etcd", ...).
func (p Paths) PidFile(name string) string { return filepath.Join(p.RunDir(), name+".pid") }

func (p Paths) LogDir() string { return p.Host(LogDir) }

// ComponentLog is the output log of a supervised component.
func (p Paths) ComponentLog(name string) string { return filepath.Join(p.LogDir(), name+".log") }

func (p Paths) StateDir() string { return p.Host(StateDir) }

// BinDir holds the component symlinks (kube-apiserver -> the component program) that make each
// component show up under its own name in ps and /proc/PID/comm, and the content-addressed store
// of component programs (<BinDir>/<sha256>/kubestrap; package progstore).
func (p Paths) BinDir() string { return filepath.Join(p.StateDir(), "bin") }

// ComponentBinary is the symlink through which a component is started.
func (p Paths) ComponentBinary(component string) string { return filepath.Join(p.BinDir(), component) }

// InstalledBinary is the installed component program whose SHA-256 is sum (hex): a verified copy
// the component links point at, root-owned when root runs it, so that a unit or supervisor run as
// root never executes a file in a user's build directory. Content-addressed, so that installing a
// new build never rewrites a program a running component executes.
func (p Paths) InstalledBinary(sum string) string {
	return filepath.Join(p.BinDir(), sum, "kubestrap")
}
