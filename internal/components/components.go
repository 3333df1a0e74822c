// Package components owns the command lines of the control-plane components — etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler — computed from a defaulted
// configuration: kubeadm v1.37.2's default flags, kubestrap's secure additions (encryption at
// rest, audit logging, no profiling), the user's extraArgs merged by name, every host path
// resolved under the root dir, plus each component's health-probe target. It also writes the two
// files those flags point at that kubeadm does not have (encryption configuration, audit policy).
// The static-pod renderer, the systemd renderer and the local supervisor all consume the same
// sorted lists, so the lists carry nothing specific to one run mode.
package components

import (
	"cmp"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// Component names, as kubeadm names the static pods (and as the bundled binary dispatches them).
const (
	EtcdName              = "etcd"
	APIServerName         = "kube-apiserver"
	ControllerManagerName = "kube-controller-manager"
	SchedulerName         = "kube-scheduler"
	// CSRApproverName is kubestrap's own component, the approver of kubelet serving certificates
	// (package csrapprover); the binary runs it when invoked under this name.
	CSRApproverName = "kubestrap-csr-approver"
)

// Probe schemes, spelled like corev1.URIScheme so a manifest renderer can convert directly.
const (
	SchemeHTTP  = "HTTP"
	SchemeHTTPS = "HTTPS"
)

// Component is one control-plane program and the flags it runs with.
type Component struct {
	// Name is EtcdName, APIServerName, ControllerManagerName, SchedulerName or CSRApproverName.
	Name string
	// Args are "--name=value" flags sorted by name (repeated extraArgs keep their given order).
	Args []string
	// Health is where the static pod probes this component (kubeadm's probes for the upstream
	// components; the CSR approver's own plain-HTTP loopback endpoint).
	Health Probe
	// Warnings are non-fatal remarks about the configuration (e.g. a non-default
	// authorization-mode), for the caller to print; kubeadm logs the same ones.
	Warnings []string
}

// Probe is a component's health endpoint. An empty Host means "the pod IP", which with
// hostNetwork is any address of the node (kubeadm leaves it empty for 0.0.0.0 and ::).
type Probe struct {
	Scheme        string // SchemeHTTP or SchemeHTTPS
	Host          string
	Port          int32
	LivenessPath  string
	ReadinessPath string // empty when the component has no readiness probe (KCM)
	StartupPath   string
}

// HealthURL is the URL to poll until the component is ready: the readiness path, or the
// liveness path for a component without readiness (KCM). An empty probe host becomes 127.0.0.1,
// which reaches a listener on 0.0.0.0 as well as a dual-stack one on ::. It is "" for a component
// without a health endpoint.
func (c Component) HealthURL() string {
	path := c.Health.ReadinessPath
	if path == "" {
		path = c.Health.LivenessPath
	}
	return c.healthURL(path)
}

// LivenessURL is the URL that answers once the component's process is up, whether or not it is
// ready: what to wait for when its readiness depends on a later step (the CSR approver's on the
// RBAC rules that init's csr-approver phase creates after wait-control-plane).
func (c Component) LivenessURL() string {
	return c.healthURL(c.Health.LivenessPath)
}

func (c Component) healthURL(path string) string {
	if c.Health.Port == 0 {
		return ""
	}
	host := c.Health.Host
	if host == "" {
		host = "127.0.0.1"
	}
	u := url.URL{
		Scheme: strings.ToLower(c.Health.Scheme),
		Host:   hostPort(host, c.Health.Port),
		Path:   path,
	}
	return u.String()
}

// ControlPlane returns the components in start order: etcd (only when it runs on this node),
// then the apiserver that needs it, then the components that need the apiserver: the
// controller-manager, the scheduler and, unless csrApprover.disabled, kubestrap's CSR approver.
func ControlPlane(cfg *config.Config, p paths.Paths) []Component {
	out := make([]Component, 0, 5)
	if cfg.LocalEtcd() {
		out = append(out, Etcd(cfg, p))
	}
	out = append(out, APIServer(cfg, p), ControllerManager(cfg, p), Scheduler(cfg, p))
	if !cfg.Kubestrap.CSRApprover.Disabled {
		out = append(out, CSRApprover(cfg, p))
	}
	return out
}

// CSRApprover is kubestrap's approver of kubelet serving certificates, with its own identity
// (csr-approver.conf, user kubestrap:csr-approver). It talks to this node's apiserver, as the
// controller-manager does. Its health endpoint is plain HTTP on loopback only, like the kubelet's
// 10248: it tells nothing but "up" and "ready", and nothing off the node needs it.
func CSRApprover(cfg *config.Config, p paths.Paths) Component {
	port := cfg.CSRApproverHealthPort()
	return Component{
		Name: CSRApproverName,
		Args: []string{
			"--healthz-bind-address=" + hostPort(CSRApproverHealthHost, port),
			"--kubeconfig=" + p.Kubeconfig("csr-approver.conf"),
		},
		Health: Probe{
			Scheme:        SchemeHTTP,
			Host:          CSRApproverHealthHost,
			Port:          port,
			LivenessPath:  "/healthz",
			ReadinessPath: "/readyz",
			StartupPath:   "/healthz",
		},
	}
}

// CSRApproverHealthHost is the address the approver's health endpoint listens on.
const CSRApproverHealthHost = "127.0.0.1"

// ArgMap parses "--name=value" flags into a map. When a flag repeats, the last value wins,
// as it does for the components' single-valued flags.
func ArgMap(args []string) map[string]string {
	m := make(map[string]string, len(args))
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		m[name] = value
	}
	return m
}

// argList is a merged list of flags, kept as name/value pairs until rendering so the
// builders can read effective values (e.g. for probes).
type argList []config.Arg

// mergeArgs applies kubeadm's override rule: an extraArg replaces every default of the same
// name; extraArgs without a default are added. Unlike kubeadm, which appends the extraArgs
// unsorted after the sorted defaults, the whole list is sorted, so the same configuration
// always yields the same command line whatever the order of the extraArgs of different names.
// The sort is stable, so repeated extraArgs of one name keep their order.
func mergeArgs(defaults map[string]string, extra []config.Arg) argList {
	overridden := make(map[string]bool, len(extra))
	for _, a := range extra {
		overridden[a.Name] = true
	}
	out := make(argList, 0, len(defaults)+len(extra))
	for name, value := range defaults {
		if !overridden[name] {
			out = append(out, config.Arg{Name: name, Value: value})
		}
	}
	// Default names are unique and the overridden ones are gone, so equal names can only come
	// from extra: the stable sort keeps those in their given order, and the map's random
	// iteration order cannot show in the result.
	out = append(out, extra...)
	slices.SortStableFunc(out, func(a, b config.Arg) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// value is the effective value of a flag (the last occurrence) and whether it is set.
func (l argList) value(name string) (string, bool) {
	return lastValue(l, name)
}

func (l argList) render() []string {
	out := make([]string, len(l))
	for i, a := range l {
		out[i] = "--" + a.Name + "=" + a.Value
	}
	return out
}

// lastValue mirrors kubeadm's GetArgValue(args, name, -1): the last occurrence wins.
func lastValue(args []config.Arg, name string) (string, bool) {
	for i := len(args) - 1; i >= 0; i-- {
		if args[i].Name == name {
			return args[i].Value, true
		}
	}
	return "", false
}

func hostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// probeHost is kubeadm's getProbeAddress: a wildcard bind address cannot be dialled by the
// kubelet as such, so the probe host is left empty (the pod IP).
func probeHost(addr string) string {
	if addr == "0.0.0.0" || addr == "::" {
		return ""
	}
	return addr
}

// portValue parses a port flag value, falling back to def when it is not a valid port.
func portValue(v string, def int32) int32 {
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || n == 0 {
		return def
	}
	return int32(n)
}

func isLoopback(addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && a.Unmap().IsLoopback()
}
