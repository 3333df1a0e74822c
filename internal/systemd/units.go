package systemd

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/staticpod"
	"github.com/kubestrap/kubestrap/templates"
)

// Unit names kubestrap installs.
const (
	KubeletUnit = "kubelet.service"
	// KubeletDropIn is the kubelet drop-in's file name in kubelet.service.d (kubeadm's).
	KubeletDropIn       = "10-kubeadm.conf"
	networkOnlineTarget = "network-online.target"
)

// UnitName is the systemd unit of a control-plane component, e.g. "kube-apiserver.service".
func UnitName(component string) string { return component + ".service" }

// UnitNames maps components to their units, keeping the order (the start order of
// components.ControlPlane).
func UnitNames(cps []components.Component) []string {
	out := make([]string, len(cps))
	for i, c := range cps {
		out[i] = UnitName(c.Name)
	}
	return out
}

var tmpl = template.Must(template.New("").
	Funcs(template.FuncMap{"join": strings.Join}).
	ParseFS(templates.FS, "*.tmpl"))

// unitData fills templates/control-plane.service.tmpl; every string is already escaped.
type unitData struct {
	Name, Description, Documentation string
	After, Wants, Requires           []string
	Type                             string
	Environment                      []string
	Exec                             string
	Args                             []string
}

var descriptions = map[string][2]string{
	components.EtcdName:              {"etcd: the key-value store of the Kubernetes control plane (kubestrap)", "https://etcd.io/docs/"},
	components.APIServerName:         {"kube-apiserver: the Kubernetes API server (kubestrap)", "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/"},
	components.ControllerManagerName: {"kube-controller-manager: the Kubernetes controllers (kubestrap)", "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/"},
	components.SchedulerName:         {"kube-scheduler: the Kubernetes scheduler (kubestrap)", "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/"},
	components.CSRApproverName:       {"kubestrap-csr-approver: approves kubelet serving certificates that kubestrap can vouch for", "https://github.com/kubestrap/kubestrap#kubelet-serving-certificates"},
}

// Render returns the unit file that runs c through its component symlink with exactly c.Args,
// and with the environment a static pod of c would get (proxy variables of the current
// environment, extraEnvs).
func Render(cfg *config.Config, p paths.Paths, c components.Component) ([]byte, error) {
	return render(cfg, p, c, environ())
}

func render(cfg *config.Config, p paths.Paths, c components.Component, env []string) ([]byte, error) {
	desc, ok := descriptions[c.Name]
	if !ok {
		return nil, fmt.Errorf("no systemd unit for component %q", c.Name)
	}
	d := unitData{
		Name:          c.Name,
		Description:   desc[0],
		Documentation: desc[1],
		After:         []string{networkOnlineTarget},
		Wants:         []string{networkOnlineTarget},
		// Type=exec fails the start job when the binary cannot be executed, where simple
		// would report success and fail afterwards.
		Type: "exec",
		Exec: execArg(p.ComponentBinary(c.Name)),
	}
	switch c.Name {
	case components.EtcdName:
		// etcd tells systemd when it serves (sd_notify READY=1), so units ordered after it
		// start against a working etcd, and a start job fails if etcd never gets there.
		d.Type = "notify"
	case components.APIServerName:
		if cfg.LocalEtcd() {
			// Requires: stopping or restarting etcd does the same to the apiserver, whose
			// storage it is; an external etcd is not this host's to order against.
			d.After = append(d.After, UnitName(components.EtcdName))
			d.Requires = []string{UnitName(components.EtcdName)}
		}
	case components.ControllerManagerName, components.SchedulerName, components.CSRApproverName:
		// Wants, not Requires: they ride out an apiserver outage on their own, so restarting
		// the apiserver need not restart them too.
		d.After = append(d.After, UnitName(components.APIServerName))
		d.Wants = append(d.Wants, UnitName(components.APIServerName))
	}
	envVars, err := staticpod.Env(cfg, c.Name, env)
	if err != nil {
		return nil, err
	}
	for _, e := range envVars {
		if e.ValueFrom != nil {
			return nil, fmt.Errorf("%s: extraEnvs entry %q uses valueFrom, which only a pod can resolve; give it a value to run in systemd mode", c.Name, e.Name)
		}
		d.Environment = append(d.Environment, envAssignment(e.Name, e.Value))
	}
	for _, a := range c.Args {
		d.Args = append(d.Args, execArg(a))
	}
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, "control-plane.service.tmpl", d); err != nil {
		return nil, fmt.Errorf("render %s: %w", UnitName(c.Name), err)
	}
	return b.Bytes(), nil
}

// KubeletUnitPath and KubeletDropInPath are where kubestrap installs the kubelet's unit and the
// drop-in that gives it kubeadm's flags. Under /etc/systemd/system they take precedence over a
// distribution package's copies of the same names in /usr/lib/systemd/system.
func KubeletUnitPath(p paths.Paths) string { return p.SystemdUnit(KubeletUnit) }
func KubeletDropInPath(p paths.Paths) string {
	return filepath.Join(p.SystemdUnit(KubeletUnit+".d"), KubeletDropIn)
}

// KubeletUnits renders the kubelet's unit and its 10-kubeadm.conf drop-in (what kubeadm leaves
// to the deb/rpm packages), running the kubelet binary at kubelet with the kubeconfigs, the
// configuration and the flags file under the root dir.
func KubeletUnits(p paths.Paths, kubelet string) (unit, dropIn []byte, err error) {
	d := map[string]string{
		"Kubelet":             execArg(kubelet),
		"BootstrapKubeconfig": pathValue(p.Kubeconfig("bootstrap-kubelet.conf")),
		"Kubeconfig":          pathValue(p.Kubeconfig("kubelet.conf")),
		"Config":              pathValue(p.KubeletConfig()),
		"FlagsEnv":            pathValue(p.KubeletFlagsEnv()),
	}
	var u, dr bytes.Buffer
	if err := tmpl.ExecuteTemplate(&u, "kubelet.service.tmpl", d); err != nil {
		return nil, nil, fmt.Errorf("render %s: %w", KubeletUnit, err)
	}
	if err := tmpl.ExecuteTemplate(&dr, "kubelet-dropin.conf.tmpl", d); err != nil {
		return nil, nil, fmt.Errorf("render the kubelet drop-in: %w", err)
	}
	return u.Bytes(), dr.Bytes(), nil
}
