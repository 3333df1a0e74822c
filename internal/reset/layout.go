package reset

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/staticpod"
	"github.com/kubestrap/kubestrap/internal/supervisor"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// controlPlane are the control-plane components in start order; they are stopped in reverse.
var controlPlane = []string{components.EtcdName, components.APIServerName, components.ControllerManagerName, components.SchedulerName}

// kubeletUnit, kubeletDropInDir and kubeletDropIn are the kubelet's unit files kubestrap writes.
const (
	kubeletUnit      = systemd.KubeletUnit
	kubeletDropInDir = kubeletUnit + ".d"
	kubeletDropIn    = systemd.KubeletDropIn
)

// unitMarker is the first-line comment of every unit file kubestrap renders: /etc/systemd/system
// is shared with the distribution and the operator, so a unit named like ours is only ours when
// it says so.
const unitMarker = "Written by kubestrap"

// Layout is what a previous init or join left under the root, as far as reset needs to know:
// where the files are and which run modes were used. Every path is absolute, under the root.
type Layout struct {
	// Components maps a control-plane component to its argument list (argv[1:]), read from the
	// supervisor spec, a static pod manifest or a systemd unit, whichever exists.
	Components map[string][]string
	// Sources names where each component's arguments came from.
	Sources map[string]string
	// CertDirs are the certificate directories to clean: the default one, the configured one,
	// and the one the components use.
	CertDirs []string
	// EtcdDataDirs are the local etcd data directories to clean.
	EtcdDataDirs []string
	// Local: the root has local-mode state (supervisor spec, component links or pid files).
	Local bool
	// Units are kubestrap's unit files present under the root ("etcd.service", ...).
	Units []string
	// Manifests are the static pod manifests present, by component name.
	Manifests map[string][]string
	// Warnings are problems met while reading the layout; reset goes on without that source.
	Warnings []string
}

// Discover reads the layout of p's root. certificatesDir and etcdDataDir are the configured
// values (host paths as in the kubeadm configuration, "" for none).
func Discover(p paths.Paths, certificatesDir, etcdDataDir string) *Layout {
	l := &Layout{Components: map[string][]string{}, Sources: map[string]string{}, Manifests: map[string][]string{}}

	if spec, err := supervisor.ReadSpec(p); err == nil {
		l.Local = true
		for _, c := range spec.Components {
			l.setComponent(c.Name, c.Args, supervisor.SpecPath(p))
		}
	} else if !errors.Is(err, supervisor.ErrNotStarted) {
		l.Warnings = append(l.Warnings, err.Error())
	}
	if exists(p.BinDir()) || exists(supervisor.SupervisorPidFile(p)) {
		l.Local = true
	}

	for _, name := range controlPlane {
		path := p.Manifest(name)
		if !exists(path) {
			continue
		}
		cmd, err := staticpod.ReadCommand(path, name)
		if err != nil {
			l.Warnings = append(l.Warnings, err.Error())
			continue
		}
		argv := cmd.Argv()
		l.Manifests[name] = argv
		if len(argv) > 0 {
			l.setComponent(name, argv[1:], path)
		}
	}

	for i, u := range append(unitNames(), kubeletUnit) {
		path := p.SystemdUnit(u)
		if !isOurUnitFile(path) {
			continue
		}
		l.Units = append(l.Units, u)
		if u == kubeletUnit {
			continue
		}
		name := controlPlane[i]
		// The command line systemd runs: drop-ins and Environment= included, so that a data dir
		// moved in a drop-in is the one reset cleans.
		exec, err := systemd.ReadExecStart(p, u)
		if err != nil {
			l.Warnings = append(l.Warnings, err.Error())
			continue
		}
		l.setComponent(name, exec.Args(), path)
	}

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

// ControlPlaneUnits are kubestrap's control-plane units present, in stop order.
func (l *Layout) ControlPlaneUnits() []string {
	var out []string
	for i := len(controlPlane) - 1; i >= 0; i-- {
		if u := systemd.UnitName(controlPlane[i]); slices.Contains(l.Units, u) {
			out = append(out, u)
		}
	}
	return out
}

func unitNames() []string {
	out := make([]string, len(controlPlane))
	for i, c := range controlPlane {
		out[i] = systemd.UnitName(c)
	}
	return out
}

// isOurUnitFile reports whether path is a regular file that kubestrap rendered.
func isOurUnitFile(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := f.Read(head)
	return bytes.Contains(head[:n], []byte(unitMarker))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
