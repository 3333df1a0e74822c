package reset

import (
	"path/filepath"
	"slices"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// kubeletUnit, kubeletDropInDir and kubeletDropIn are the kubelet's unit files kubestrap writes.
const (
	kubeletUnit      = systemd.KubeletUnit
	kubeletDropInDir = kubeletUnit + ".d"
	kubeletDropIn    = systemd.KubeletDropIn
)

// Layout is what a previous init or join left under the root, as far as reset needs to know:
// where the files are and what each run mode installed. Every path is absolute, under the root.
type Layout struct {
	// Components maps a control-plane component to its argument list (argv[1:]), from the first
	// run mode (in registration order) that has it: the supervisor spec, a static pod manifest
	// or a systemd unit, read the way each runs it.
	Components map[string][]string
	// Sources names where each component's arguments came from.
	Sources map[string]string
	// CertDirs are the certificate directories to clean: the default one, the configured one,
	// and the one the components use.
	CertDirs []string
	// EtcdDataDirs are the local etcd data directories to clean.
	EtcdDataDirs []string
	// Modes are the run modes that left something under the root, in registration order.
	Modes []runmode.Installed
	// KubeletUnit: kubestrap's kubelet unit is present (a joined node, or static-pod mode).
	KubeletUnit bool
	// Warnings are problems met while reading the layout; reset goes on without that source.
	Warnings []string
}

// Discover reads the layout of p's root: every run mode's installation (runmode.DiscoverAll), the
// kubelet's unit, and the directories to clean. certificatesDir and etcdDataDir are the
// configured values (host paths as in the kubeadm configuration, "" for none).
func Discover(p paths.Paths, certificatesDir, etcdDataDir string) *Layout {
	l := &Layout{Components: map[string][]string{}, Sources: map[string]string{}}
	l.Modes = runmode.DiscoverAll(p)
	for _, in := range l.Modes {
		l.Warnings = append(l.Warnings, in.Warnings...)
		for _, f := range in.Components {
			if len(f.Argv) > 0 {
				l.setComponent(f.Name, f.Argv[1:], f.Source)
			}
		}
	}
	l.KubeletUnit = systemd.WrittenByKubestrap(p.SystemdUnit(kubeletUnit))

	l.CertDirs = []string{p.CertDir("")}
	if certificatesDir != "" {
		l.CertDirs = appendNew(l.CertDirs, p.CertDir(certificatesDir))
	}
	// The certificates dir the components were given, when init put the files there: the CA and
	// the serving certificate side by side. A flag pointing elsewhere (an extraArg naming the
	// operator's own file) does not make that directory kubestrap's.
	if d := pkiDirOf(l.Components[components.APIServerName], "client-ca-file", "ca.crt", "tls-cert-file", "apiserver.crt"); d != "" {
		l.CertDirs = appendNew(l.CertDirs, d)
	}
	if d := pkiDirOf(l.Components[components.EtcdName], "trusted-ca-file", "ca.crt", "cert-file", "server.crt"); d != "" && filepath.Base(d) == "etcd" {
		l.CertDirs = appendNew(l.CertDirs, filepath.Dir(d))
	}

	// The default data dir is cleaned too: a half-finished init may have created it before
	// writing any spec, and what is not etcd's in it is kept anyway (see the cleanup rules).
	l.EtcdDataDirs = []string{p.EtcdDataDir("")}
	if etcdDataDir != "" {
		l.EtcdDataDirs = appendNew(l.EtcdDataDirs, p.EtcdDataDir(etcdDataDir))
	}
	if args, ok := l.Components[components.EtcdName]; ok {
		if d := components.ArgMap(args)["data-dir"]; filepath.IsAbs(d) {
			l.EtcdDataDirs = appendNew(l.EtcdDataDirs, filepath.Clean(d))
		}
	}
	return l
}

// pkiDirOf returns the directory of two flags' files when both name kubeadm's files in the same
// directory, "" otherwise.
func pkiDirOf(args []string, caFlag, caFile, certFlag, certFile string) string {
	m := components.ArgMap(args)
	ca, cert := filepath.Clean(m[caFlag]), filepath.Clean(m[certFlag])
	if !filepath.IsAbs(ca) || filepath.Base(ca) != caFile || filepath.Base(cert) != certFile || filepath.Dir(ca) != filepath.Dir(cert) {
		return ""
	}
	return filepath.Dir(ca)
}

func (l *Layout) setComponent(name string, args []string, source string) {
	if _, ok := l.Components[name]; ok {
		return
	}
	l.Components[name] = args
	l.Sources[name] = source
}

// EtcdArgs are the local etcd member's flags, nil when this node runs no etcd.
func (l *Layout) EtcdArgs() map[string]string {
	args, ok := l.Components[components.EtcdName]
	if !ok {
		return nil
	}
	return components.ArgMap(args)
}

// contained are the command lines (program and arguments) of the components that run in
// containers, by name: processes reset can only know by exact command line.
func (l *Layout) contained() map[string][]string {
	out := map[string][]string{}
	for _, in := range l.Modes {
		if !in.Contained {
			continue
		}
		for _, f := range in.Components {
			out[f.Name] = f.Argv
		}
	}
	return out
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
