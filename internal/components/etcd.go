package components

import (
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// Etcd returns the local etcd member with kubeadm's default flags (getEtcdCommand), merged with
// etcd.local.extraArgs: the first member of a new cluster, or with cfg.EtcdInitialCluster set (a
// control-plane join) a member joining that existing cluster. Call it only when cfg.LocalEtcd().
func Etcd(cfg *config.Config, p paths.Paths) Component {
	etcdPKI := filepath.Join(p.CertDir(cfg.Cluster.CertificatesDir), "etcd")
	inPKI := func(name string) string { return filepath.Join(etcdPKI, name) }
	adv := cfg.AdvertiseAddress()
	node := cfg.NodeName()
	lo := cfg.LoopbackHost()

	var dataDir string
	var extra []config.Arg
	if local := cfg.Cluster.Etcd.Local; local != nil {
		dataDir = local.DataDir
		extra = local.ExtraArgs
	}

	clientURL := "https://" + hostPort(adv, cfg.EtcdClientPort())
	peerURL := "https://" + hostPort(adv, cfg.EtcdPeerPort())
	listenClient := "https://" + hostPort(lo, cfg.EtcdClientPort())
	// kubeadm would list the same URL twice for a loopback advertise address.
	if listenClient != clientURL {
		listenClient += "," + clientURL
	}

	d := map[string]string{
		"advertise-client-urls":          clientURL,
		"cert-file":                      inPKI("server.crt"),
		"client-cert-auth":               "true",
		"data-dir":                       p.EtcdDataDir(dataDir),
		"feature-gates":                  "InitialCorruptCheck=true",
		"initial-advertise-peer-urls":    peerURL,
		"initial-cluster":                node + "=" + peerURL,
		"key-file":                       inPKI("server.key"),
		"listen-client-urls":             listenClient,
		"listen-metrics-urls":            "http://" + hostPort(lo, cfg.EtcdMetricsPort()),
		"listen-peer-urls":               peerURL,
		"name":                           node,
		"peer-cert-file":                 inPKI("peer.crt"),
		"peer-client-cert-auth":          "true",
		"peer-key-file":                  inPKI("peer.key"),
		"peer-trusted-ca-file":           inPKI("ca.crt"),
		"snapshot-count":                 "10000",
		"trusted-ca-file":                inPKI("ca.crt"),
		"watch-progress-notify-interval": "5s",
	}

	if cfg.EtcdInitialCluster != "" {
		// A control-plane join: the member was added to the running cluster (as a learner) and
		// starts from its members, as kubeadm's etcd-join phase writes it. etcd reads both
		// flags only when its data dir is empty, so restarts later change nothing.
		d["initial-cluster"] = cfg.EtcdInitialCluster
		d["initial-cluster-state"] = "existing"
	}

	args := mergeArgs(d, extra)
	return Component{
		Name:   EtcdName,
		Args:   args.render(),
		Health: etcdProbe(args, lo, cfg.EtcdMetricsPort()),
	}
}

// etcdProbe is kubeadm's GetEtcdProbeEndpoint: the plain-HTTP metrics listener (which also
// serves /livez and /readyz) avoids needing a client certificate to probe, and an overridden
// listen-metrics-urls moves the probe to its first URL.
func etcdProbe(args argList, loopback string, metricsPort int32) Probe {
	pr := Probe{
		Scheme:        SchemeHTTP,
		Host:          loopback,
		Port:          metricsPort,
		LivenessPath:  "/livez",
		ReadinessPath: "/readyz",
		StartupPath:   "/readyz",
	}
	v, _ := args.value("listen-metrics-urls")
	first, _, _ := strings.Cut(v, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil {
		return pr
	}
	if u.Scheme == "https" {
		pr.Scheme = SchemeHTTPS
	}
	if h := u.Hostname(); h != "" {
		pr.Host = h
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err == nil && n > 0 {
			pr.Port = int32(n)
		}
	}
	return pr
}
