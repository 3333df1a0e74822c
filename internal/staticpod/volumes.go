package staticpod

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// volumeSet collects a pod's hostPath volumes by name; kubeadm emits them, and their mounts,
// sorted by name, and a later volume of the same name (a user's) replaces an earlier one.
type volumeSet map[string]struct {
	vol   corev1.Volume
	mount corev1.VolumeMount
}

// add mounts hostPath at mountPath; an empty mountPath means the same path as on the host,
// which is what makes a manifest's command line behave the same when run on the host.
func (s volumeSet) add(name, hostPath, mountPath string, readOnly bool, t corev1.HostPathType) {
	if mountPath == "" {
		mountPath = hostPath
	}
	s[name] = struct {
		vol   corev1.Volume
		mount corev1.VolumeMount
	}{
		vol: corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: hostPath, Type: ptrTo(t)},
		}},
		mount: corev1.VolumeMount{Name: name, MountPath: mountPath, ReadOnly: readOnly},
	}
}

func (s volumeSet) sorted() ([]corev1.Volume, []corev1.VolumeMount) {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.SortFunc(names, cmp.Compare)
	vols := make([]corev1.Volume, 0, len(names))
	mounts := make([]corev1.VolumeMount, 0, len(names))
	for _, n := range names {
		vols = append(vols, s[n].vol)
		mounts = append(mounts, s[n].mount)
	}
	return vols, mounts
}

// certVolumes are the apiserver's and the controller-manager's certificate mounts: the cluster
// PKI, the host's CA bundle and every distribution CA directory that exists under the root.
//
// The CA directories are mounted where the container's TLS library looks for them (their
// path with root "/"), not at their place under the root: no flag names them, and under a test
// root the point is still the container's trust store.
func certVolumes(s volumeSet, cfg *config.Config, p paths.Paths, h host) {
	s.add("k8s-certs", p.CertDir(cfg.Cluster.CertificatesDir), "", true, corev1.HostPathDirectoryOrCreate)
	s.add("ca-certs", p.Host(paths.SSLCertsDir), paths.SSLCertsDir, true, corev1.HostPathDirectoryOrCreate)
	for _, dir := range caCertDirs {
		if h.isDir(p.Host(dir)) {
			s.add(volumeName(dir), p.Host(dir), dir, true, corev1.HostPathDirectoryOrCreate)
		}
	}
}

// volumeName is kubeadm's name for a host directory volume: the path with "/" turned into "-",
// e.g. "etc-pki-ca-trust".
func volumeName(dir string) string {
	b := []byte(filepath.Clean(dir))[1:]
	for i := range b {
		if b[i] == '/' {
			b[i] = '-'
		}
	}
	return string(b)
}

// apiServerVolumes adds, to the certificate mounts, what kubestrap's own flags point at (the
// encryption configuration and audit policy read-only, the audit log directory read-write) and,
// with an external etcd, the directories of its client certificate files.
func apiServerVolumes(s volumeSet, cfg *config.Config, p paths.Paths, args map[string]string, h host) {
	certVolumes(s, cfg, p, h)
	for _, flag := range []string{"encryption-provider-config", "audit-policy-file"} {
		// A file moved elsewhere by extraArgs is the user's to mount with extraVolumes.
		if f := args[flag]; f != "" && withinDir(f, p.KubestrapConfigDir()) {
			s.add("kubestrap-config", p.KubestrapConfigDir(), "", true, corev1.HostPathDirectoryOrCreate)
		}
	}
	if args["audit-log-path"] == p.AuditLog() {
		s.add("audit-log", p.AuditLogDir(), "", false, corev1.HostPathDirectoryOrCreate)
	}
	if cfg.Cluster.Etcd.External != nil {
		for i, dir := range externalEtcdCertDirs(cfg, p, args) {
			s.add(fmt.Sprintf("etcd-certs-%d", i), dir, "", true, corev1.HostPathDirectoryOrCreate)
		}
	}
}

// externalEtcdCertDirs are the directories of the external etcd's CA, certificate and key
// files (as the flags name them) that no other volume already covers, in that order, once each.
func externalEtcdCertDirs(cfg *config.Config, p paths.Paths, args map[string]string) []string {
	covered := []string{p.CertDir(cfg.Cluster.CertificatesDir), p.Host(paths.SSLCertsDir)}
	for _, d := range caCertDirs {
		covered = append(covered, p.Host(d))
	}
	var out []string
	for _, flag := range []string{"etcd-cafile", "etcd-certfile", "etcd-keyfile"} {
		f := args[flag]
		if f == "" {
			continue
		}
		dir := filepath.Dir(f)
		if slices.ContainsFunc(covered, func(c string) bool { return withinDir(dir, c) }) || slices.Contains(out, dir) {
			continue
		}
		out = append(out, dir)
	}
	return out
}

// etcdVolumes are etcd's data directory and certificates, both read-write as kubeadm mounts them
// (etcd writes nothing to its certificate directory, but kubeadm's manifests have always done so).
func etcdVolumes(s volumeSet, cfg *config.Config, p paths.Paths, args map[string]string) {
	dataDir := args["data-dir"]
	if dataDir == "" {
		dataDir = p.EtcdDataDir("")
	}
	s.add("etcd-data", dataDir, "", false, corev1.HostPathDirectoryOrCreate)
	s.add("etcd-certs", filepath.Join(p.CertDir(cfg.Cluster.CertificatesDir), "etcd"), "", false, corev1.HostPathDirectoryOrCreate)
}
