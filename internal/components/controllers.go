package components

import (
	"path/filepath"
	"strconv"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// controllerManagerAPIBurst is kube-controller-manager's --kube-api-burst (upstream's default
// is 30); see ControllerManager.
const controllerManagerAPIBurst = 200

// ControllerManager returns kube-controller-manager with kubeadm's default flags
// (getControllerManagerCommand) plus kubestrap's additions, merged with
// controllerManager.extraArgs.
//
// kubeadm's external-CA mode (ca.crt without ca.key: empty --cluster-signing-* values) depends on
// files on disk, not on the configuration; a caller that detects it overrides those two flags.
func ControllerManager(cfg *config.Config, p paths.Paths) Component {
	pki := p.CertDir(cfg.Cluster.CertificatesDir)
	inPKI := func(name string) string { return filepath.Join(pki, name) }
	kubeconfig := p.Kubeconfig("controller-manager.conf")
	port := cfg.ControllerManagerPort()

	d := map[string]string{
		"authentication-kubeconfig":        kubeconfig,
		"authorization-kubeconfig":         kubeconfig,
		"bind-address":                     "127.0.0.1",
		"client-ca-file":                   inPKI("ca.crt"),
		"cluster-signing-cert-file":        inPKI("ca.crt"),
		"cluster-signing-key-file":         inPKI("ca.key"),
		"controllers":                      "*,bootstrapsigner,tokencleaner",
		"kubeconfig":                       kubeconfig,
		"leader-elect":                     "true",
		"requestheader-client-ca-file":     inPKI("front-proxy-ca.crt"),
		"root-ca-file":                     inPKI("ca.crt"),
		"service-account-private-key-file": inPKI("sa.key"),
		"use-service-account-credentials":  "true",

		// kubeadm relies on the built-in 10257; kubestrap sets it so that two clusters can
		// share a machine.
		"secure-port": strconv.Itoa(int(port)),
		"profiling":   "false",
		// With --use-service-account-credentials the controller-manager builds each controller's
		// client through its own: it reads the namespace, reads or creates the controller's
		// service account and requests its token, about 160 requests for the 40-odd controllers
		// of a new cluster. At the default burst of 30 and 20 requests a second that alone
		// held the controllers' start (and init, which waits for them) for about 5.5 s, and a
		// new leader after a failover pays it again. A burst of 200 lets one start-up through;
		// the sustained rate stays the default 20 a second, and the apiserver's priority and
		// fairness still bounds what it serves.
		"kube-api-burst": strconv.Itoa(controllerManagerAPIBurst),
	}
	// Node CIDR allocation needs both ranges; without a pod subnet the CNI plugin allocates.
	if pod := cfg.Cluster.Networking.PodSubnet; pod != "" {
		d["allocate-node-cidrs"] = "true"
		d["cluster-cidr"] = pod
		if svc := cfg.Cluster.Networking.ServiceSubnet; svc != "" {
			d["service-cluster-ip-range"] = svc
		}
	}
	if cfg.Cluster.ClusterName != "" {
		d["cluster-name"] = cfg.Cluster.ClusterName
	}

	args := mergeArgs(d, cfg.Cluster.ControllerManager.ExtraArgs)
	return Component{
		Name:   ControllerManagerName,
		Args:   args.render(),
		Health: localProbe(args, port, "/healthz", ""),
	}
}

// Scheduler returns kube-scheduler with kubeadm's default flags (getSchedulerCommand) plus
// kubestrap's additions, merged with scheduler.extraArgs.
func Scheduler(cfg *config.Config, p paths.Paths) Component {
	kubeconfig := p.Kubeconfig("scheduler.conf")
	port := cfg.SchedulerPort()
	d := map[string]string{
		"authentication-kubeconfig": kubeconfig,
		"authorization-kubeconfig":  kubeconfig,
		"bind-address":              "127.0.0.1",
		"kubeconfig":                kubeconfig,
		"leader-elect":              "true",

		"secure-port": strconv.Itoa(int(port)),
		"profiling":   "false",
	}
	args := mergeArgs(d, cfg.Cluster.Scheduler.ExtraArgs)
	return Component{
		Name:   SchedulerName,
		Args:   args.render(),
		Health: localProbe(args, port, "/livez", "/readyz"),
	}
}

// localProbe targets a component serving HTTPS on its bind address (kubeadm's
// Get{ControllerManager,Scheduler}ProbeAddress). Unlike kubeadm, which probes the built-in
// port, the port follows the effective --secure-port.
func localProbe(args argList, port int32, live, ready string) Probe {
	host := "127.0.0.1"
	if v, ok := args.value("bind-address"); ok {
		host = probeHost(v)
	}
	if v, ok := args.value("secure-port"); ok {
		port = portValue(v, port)
	}
	return Probe{
		Scheme:        SchemeHTTPS,
		Host:          host,
		Port:          port,
		LivenessPath:  live,
		ReadinessPath: ready,
		StartupPath:   live,
	}
}
