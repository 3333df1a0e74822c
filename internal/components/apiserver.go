package components

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// defaultAuthorizationMode is kubeadm's authorization-mode; Node must come before RBAC so
// kubelets are authorized by the node authorizer first.
const defaultAuthorizationMode = "Node,RBAC"

// Audit log retention. kube-apiserver keeps logs forever by default; these bound the disk use
// of a busy control plane to about a gigabyte (10 backups of 100 MB) and a month of history.
const (
	auditLogMaxAge    = "30"
	auditLogMaxBackup = "10"
	auditLogMaxSize   = "100"
)

// APIServer returns kube-apiserver with kubeadm's default flags (getAPIServerCommand) plus
// kubestrap's secure defaults, merged with apiServer.extraArgs.
func APIServer(cfg *config.Config, p paths.Paths) Component {
	pki := p.CertDir(cfg.Cluster.CertificatesDir)
	inPKI := func(name string) string { return filepath.Join(pki, name) }
	adv := cfg.AdvertiseAddress()
	extra := cfg.Cluster.APIServer.ExtraArgs

	d := map[string]string{
		"advertise-address":                  adv,
		"allow-privileged":                   "true",
		"client-ca-file":                     inPKI("ca.crt"),
		"enable-admission-plugins":           "NodeRestriction",
		"enable-bootstrap-token-auth":        "true",
		"kubelet-client-certificate":         inPKI("apiserver-kubelet-client.crt"),
		"kubelet-client-key":                 inPKI("apiserver-kubelet-client.key"),
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"proxy-client-cert-file":             inPKI("front-proxy-client.crt"),
		"proxy-client-key-file":              inPKI("front-proxy-client.key"),
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-client-ca-file":       inPKI("front-proxy-ca.crt"),
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        strconv.Itoa(int(cfg.BindPort())),
		"service-account-issuer":             "https://kubernetes.default.svc." + cfg.Cluster.Networking.DNSDomain,
		"service-account-key-file":           inPKI("sa.pub"),
		"service-account-signing-key-file":   inPKI("sa.key"),
		"service-cluster-ip-range":           cfg.Cluster.Networking.ServiceSubnet,
		"tls-cert-file":                      inPKI("apiserver.crt"),
		"tls-private-key-file":               inPKI("apiserver.key"),

		// kubestrap's additions. Profiling exposes pprof to anyone allowed /debug/pprof.
		"profiling": "false",
		// Secrets are encrypted in etcd; EnsureAPIServerFiles writes the configuration.
		"encryption-provider-config": p.EncryptionConfig(),
		"audit-policy-file":          p.AuditPolicy(),
		"audit-log-path":             p.AuditLog(),
		"audit-log-maxage":           auditLogMaxAge,
		"audit-log-maxbackup":        auditLogMaxBackup,
		"audit-log-maxsize":          auditLogMaxSize,
		// By default tokens that admission injects into pods are issued for a year (an aid for
		// migrating from legacy tokens) instead of the hour they request; a leaked token
		// should stop working soon.
		"service-account-extend-token-expiration": "false",
		// The apiserver verifies a kubelet's serving certificate (kubectl logs, exec,
		// port-forward) against the cluster CA, which signs kubelet-serving CSRs (CIS 1.2.5).
		// Kubelets request those certificates (serverTLSBootstrap in package kubelet) and
		// kubestrap's CSR approver approves the ones it can vouch for; without one the
		// connection would trust any certificate a node presents.
		"kubelet-certificate-authority": inPKI("ca.crt"),
	}

	if ext := cfg.Cluster.Etcd.External; ext != nil {
		d["etcd-servers"] = strings.Join(ext.Endpoints, ",")
		// Paths in the configuration are host paths as seen with root "/", like
		// certificatesDir, so they move under the root dir with everything else.
		if ext.CAFile != "" {
			d["etcd-cafile"] = p.Host(ext.CAFile)
		}
		if ext.CertFile != "" && ext.KeyFile != "" {
			d["etcd-certfile"] = p.Host(ext.CertFile)
			d["etcd-keyfile"] = p.Host(ext.KeyFile)
		}
	} else {
		// The loopback follows the advertise address's family, as etcd listens on it.
		d["etcd-servers"] = "https://" + hostPort(cfg.LoopbackHost(), cfg.EtcdClientPort())
		d["etcd-cafile"] = inPKI("etcd/ca.crt")
		d["etcd-certfile"] = inPKI("apiserver-etcd-client.crt")
		d["etcd-keyfile"] = inPKI("apiserver-etcd-client.key")
		// etcd then only listens where the user said, so the apiserver must follow.
		if local := cfg.Cluster.Etcd.Local; local != nil {
			if v, ok := lastValue(local.ExtraArgs, "advertise-client-urls"); ok {
				d["etcd-servers"] = v
			}
		}
	}

	// The lease endpoint reconciler publishes the advertise address in the kubernetes Service's
	// Endpoints, which may not hold a loopback address; on a single loopback-only node there is
	// nothing to reconcile anyway.
	if isLoopback(adv) {
		d["endpoint-reconciler-type"] = "none"
	}

	var warnings []string
	// authorization-config replaces authorization-mode; the apiserver refuses both together.
	if v, _ := lastValue(extra, "authorization-config"); v == "" {
		d["authorization-mode"] = defaultAuthorizationMode
		if mode, ok := lastValue(extra, "authorization-mode"); ok && mode != defaultAuthorizationMode {
			warnings = append(warnings, fmt.Sprintf(
				"the default kube-apiserver authorization-mode is %q; using %q", defaultAuthorizationMode, mode))
		}
	}

	args := mergeArgs(d, extra)
	// kubeadm probes bindPort; following an overriding secure-port extraArg keeps the probe
	// pointed at the port the apiserver really serves.
	port := cfg.BindPort()
	if v, ok := args.value("secure-port"); ok {
		port = portValue(v, port)
	}
	return Component{
		Name: APIServerName,
		Args: args.render(),
		Health: Probe{
			Scheme:        SchemeHTTPS,
			Host:          probeHost(adv),
			Port:          port,
			LivenessPath:  "/livez",
			ReadinessPath: "/readyz",
			StartupPath:   "/livez",
		},
		Warnings: warnings,
	}
}
