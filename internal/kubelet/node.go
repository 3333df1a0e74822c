package kubelet

import (
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// NodeFlags are the per-node settings that go to kubeadm-flags.env rather than to the
// cluster-wide KubeletConfiguration.
type NodeFlags struct {
	// NodeName is the node's name; when it differs from Hostname the kubelet gets
	// --hostname-override.
	NodeName string
	// CRISocket is the container runtime endpoint (nodeRegistration.criSocket).
	CRISocket string
	// Taints are registered by the kubelet with the Node object (--register-with-taints), so
	// that nothing schedules onto the node before they are in place.
	Taints []corev1.Taint
	// ExtraArgs are nodeRegistration.kubeletExtraArgs; they replace flags of the same name.
	ExtraArgs []config.Arg
	// Hostname is the host's name; empty means os.Hostname().
	Hostname string
}

// Options controls WriteNodeFiles.
type Options struct {
	// Files writes the node files; nil is the disk, reporting on Log. A dry-run writer writes
	// nothing and prints every file in full instead.
	Files fsutil.Writer
	// Log receives kubeadm-style progress lines; nil discards them.
	Log io.Writer
	// Kubelet is the kubelet binary the unit runs; empty means "kubelet" on PATH, else
	// /usr/bin/kubelet (where the deb and rpm packages put it).
	Kubelet string
	// FS reads the kubelet's owner for the ownership check; the zero value is the real file
	// system (tests play root-owned files with it).
	FS systemd.InstallFS
}

// File modes: kubeadm writes config.yaml and kubeadm-flags.env 0644, in a 0700 /var/lib/kubelet.
const (
	fileMode       fs.FileMode = 0o644
	kubeletDirMode fs.FileMode = 0o700
	defaultKubelet             = "/usr/bin/kubelet"
)

// WriteNodeFiles writes what a node's kubelet starts from: <root>/var/lib/kubelet/config.yaml
// (kc, the cluster-wide configuration, with its paths moved under the root), kubeadm-flags.env
// (the per-node flags) and — beyond kubeadm, which leaves them to the distribution packages —
// <root>/etc/systemd/system/kubelet.service and its kubelet.service.d/10-kubeadm.conf drop-in.
// Files with the same content are kept; others are replaced, as kubeadm does on every init and
// join. It does not restart the kubelet. It refuses a kubelet binary that someone other than
// root could change (systemd.CheckRootProgram), before writing anything.
func WriteNodeFiles(p paths.Paths, kc *kubeletv1beta1.KubeletConfiguration, flags NodeFlags, o Options) error {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	cfgData, err := Marshal(ForRoot(kc, p))
	if err != nil {
		return err
	}
	env, err := FlagsEnv(flags)
	if err != nil {
		return err
	}
	bin := kubeletBinary(o.Kubelet)
	// The unit runs the kubelet as root: refuse, before writing anything, a kubelet a non-root
	// user could replace. A dry run checks too, as it reports what the real run would refuse.
	if err := systemd.CheckRootProgram(bin, o.FS); err != nil {
		return err
	}
	unit, dropIn, err := systemd.KubeletUnits(p, bin)
	if err != nil {
		return err
	}
	w := fsutil.OrDisk(o.Files, o.Log)
	if err := w.Mkdir(p.KubeletDir(), kubeletDirMode); err != nil {
		return err
	}
	const prefix = "[kubelet-start]"
	for _, f := range []struct {
		path, what string
		data       []byte
	}{
		{p.KubeletFlagsEnv(), "kubelet environment file with flags", env},
		{p.KubeletConfig(), "kubelet configuration", cfgData},
		{systemd.KubeletUnitPath(p), "kubelet systemd unit", unit},
		{systemd.KubeletDropInPath(p), "kubelet systemd drop-in", dropIn},
	} {
		if err := systemd.WriteFile(w, f.path, f.data, fileMode, f.what, prefix, log); err != nil {
			return err
		}
	}
	return nil
}

// FlagsFromEnv reads back the flags of a kubeadm-flags.env, as FlagsEnv (or kubeadm) writes it:
// each --name=value of KUBELET_KUBEADM_ARGS, by name (a repeated flag keeps its last value, as
// the kubelet's flag parsing does).
func FlagsFromEnv(data []byte) map[string]string {
	flags := map[string]string{}
	for line := range strings.Lines(string(data)) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "KUBELET_KUBEADM_ARGS=")
		if !ok {
			continue
		}
		// One pair of quotes around the value; inside double quotes, systemd's backslash
		// escapes (FlagsEnv writes \\ and \").
		switch {
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(v[1 : len(v)-1])
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		}
		for _, arg := range strings.Fields(v) {
			if name, value, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "="); ok && strings.HasPrefix(arg, "--") {
				flags[name] = value
			}
		}
	}
	return flags
}

// FlagsEnv renders kubeadm-flags.env: KUBELET_KUBEADM_ARGS with the container runtime endpoint,
// --hostname-override when the node name is not the hostname, --register-with-taints, and the
// extra args merged by name (an extra arg replaces a flag of the same name). The flags are
// sorted, as the components' are, so the file does not depend on the order of extra args of
// different names.
func FlagsEnv(f NodeFlags) ([]byte, error) {
	base := map[string]string{}
	if f.CRISocket != "" {
		base["container-runtime-endpoint"] = f.CRISocket
	}
	host := f.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("detect the hostname for the kubelet's flags: %w", err)
		}
		host = h
	}
	// The kubelet lower-cases the hostname it registers; kubeadm compares the same way.
	if f.NodeName != "" && f.NodeName != strings.ToLower(strings.TrimSpace(host)) {
		base["hostname-override"] = f.NodeName
	}
	if len(f.Taints) > 0 {
		ts := make([]string, len(f.Taints))
		for i, t := range f.Taints {
			ts[i] = t.ToString()
		}
		base["register-with-taints"] = strings.Join(ts, ",")
	}
	overridden := map[string]bool{}
	for _, a := range f.ExtraArgs {
		overridden[a.Name] = true
	}
	args := slices.Clone(f.ExtraArgs)
	for name, value := range base {
		if !overridden[name] {
			args = append(args, config.Arg{Name: name, Value: value})
		}
	}
	slices.SortStableFunc(args, func(a, b config.Arg) int { return cmp.Compare(a.Name, b.Name) })
	words := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a.Value, " \t\n") {
			// systemd splits $KUBELET_KUBEADM_ARGS on whitespace, so the kubelet would see
			// a different flag than the one configured.
			return nil, fmt.Errorf("kubelet flag --%s=%q: values with whitespace cannot pass through kubeadm-flags.env", a.Name, a.Value)
		}
		words[i] = "--" + a.Name + "=" + a.Value
	}
	// The file is read by systemd's EnvironmentFile=, where a double-quoted value takes
	// backslash escapes.
	v := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(strings.Join(words, " "))
	return []byte(`KUBELET_KUBEADM_ARGS="` + v + "\"\n"), nil
}

func kubeletBinary(path string) string {
	if path != "" {
		return path
	}
	if p, err := exec.LookPath("kubelet"); err == nil && strings.HasPrefix(p, "/") {
		return p
	}
	return defaultKubelet
}
