package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Values computed from a defaulted configuration. They live here, next to the defaults, so that the
// PKI, the kubeconfigs and the component flags can never disagree about them.

// Default ports (kubeadm's constants; reference §10).
const (
	DefaultAPIServerPort   = 6443
	DefaultEtcdClientPort  = 2379
	DefaultEtcdPeerPort    = 2380
	DefaultEtcdMetricsPort = 2381
	DefaultKCMPort         = 10257
	DefaultSchedulerPort   = 10259
	// DefaultCSRApproverHealthPort is kubestrap's own choice for its CSR approver's health
	// endpoint: next to the control plane's 102xx ports and used by none of the upstream
	// components that run on a node (kubelet 10248/10250, kube-proxy 10249/10256,
	// controller-manager 10257, cloud-controller-manager 10258, scheduler 10259).
	DefaultCSRApproverHealthPort = 10261
)

// NodeName is the defaulted node name.
func (c *Config) NodeName() string { return c.Init.NodeRegistration.Name }

// AdvertiseAddress is the defaulted advertise address of the local apiserver.
func (c *Config) AdvertiseAddress() string { return c.Init.LocalAPIEndpoint.AdvertiseAddress }

// BindPort is the local apiserver's port.
func (c *Config) BindPort() int32 {
	if c.Init.LocalAPIEndpoint.BindPort == 0 {
		return DefaultAPIServerPort
	}
	return c.Init.LocalAPIEndpoint.BindPort
}

// LocalAPIServerURL is https://<advertiseAddress>:<bindPort>, the endpoint of this node's own
// apiserver (used by kubelet.conf, controller-manager.conf and scheduler.conf).
func (c *Config) LocalAPIServerURL() string {
	return "https://" + net.JoinHostPort(c.AdvertiseAddress(), strconv.Itoa(int(c.BindPort())))
}

// ControlPlaneURL is the cluster's endpoint: controlPlaneEndpoint when set (with bindPort added
// when it has no port), else the local apiserver.
func (c *Config) ControlPlaneURL() string {
	ep := c.Cluster.ControlPlaneEndpoint
	if ep == "" {
		return c.LocalAPIServerURL()
	}
	if _, _, err := net.SplitHostPort(ep); err != nil {
		ep = net.JoinHostPort(strings.Trim(ep, "[]"), strconv.Itoa(int(c.BindPort())))
	}
	return "https://" + ep
}

// ControlPlaneEndpointHost is the host part of controlPlaneEndpoint ("" when unset).
func (c *Config) ControlPlaneEndpointHost() string {
	ep := c.Cluster.ControlPlaneEndpoint
	if ep == "" {
		return ""
	}
	if h, _, err := net.SplitHostPort(ep); err == nil {
		return h
	}
	return strings.Trim(ep, "[]")
}

// ServiceSubnets are the comma-separated entries of networking.serviceSubnet.
func (c *Config) ServiceSubnets() []string { return splitList(c.Cluster.Networking.ServiceSubnet) }

// PodSubnets are the comma-separated entries of networking.podSubnet.
func (c *Config) PodSubnets() []string { return splitList(c.Cluster.Networking.PodSubnet) }

// ServiceIP returns the n-th address of the first service subnet: n=1 is the kubernetes Service
// VIP (10.96.0.1 by default), n=10 the cluster DNS address.
func (c *Config) ServiceIP(n int) (net.IP, error) {
	subnets := c.ServiceSubnets()
	if len(subnets) == 0 {
		return nil, fmt.Errorf("networking.serviceSubnet is empty")
	}
	prefix, err := netip.ParsePrefix(subnets[0])
	if err != nil {
		return nil, fmt.Errorf("networking.serviceSubnet %q: %w", subnets[0], err)
	}
	addr := prefix.Masked().Addr()
	for i := 0; i < n; i++ {
		addr = addr.Next()
	}
	if !prefix.Contains(addr) {
		return nil, fmt.Errorf("networking.serviceSubnet %s has no address number %d", prefix, n)
	}
	return net.IP(addr.AsSlice()), nil
}

// CertValidity is certificateValidityPeriod (leaf certificates).
func (c *Config) CertValidity() time.Duration {
	if c.Cluster.CertificateValidityPeriod == nil {
		return 365 * 24 * time.Hour
	}
	return c.Cluster.CertificateValidityPeriod.Duration
}

// CAValidity is caCertificateValidityPeriod.
func (c *Config) CAValidity() time.Duration {
	if c.Cluster.CACertificateValidityPeriod == nil {
		return 10 * 365 * 24 * time.Hour
	}
	return c.Cluster.CACertificateValidityPeriod.Duration
}

// LocalEtcd reports whether this node runs its own etcd member.
func (c *Config) LocalEtcd() bool { return c.Cluster.Etcd.External == nil }

// EtcdClientPort, EtcdPeerPort and EtcdMetricsPort are the local etcd member's ports.
func (c *Config) EtcdClientPort() int32 {
	return orDefault(c.Kubestrap.Etcd.ClientPort, DefaultEtcdClientPort)
}
func (c *Config) EtcdPeerPort() int32 {
	return orDefault(c.Kubestrap.Etcd.PeerPort, DefaultEtcdPeerPort)
}
func (c *Config) EtcdMetricsPort() int32 {
	return orDefault(c.Kubestrap.Etcd.MetricsPort, DefaultEtcdMetricsPort)
}

// ControllerManagerPort and SchedulerPort are the components' secure ports.
func (c *Config) ControllerManagerPort() int32 {
	return orDefault(c.Kubestrap.ControllerManager.SecurePort, DefaultKCMPort)
}
func (c *Config) SchedulerPort() int32 {
	return orDefault(c.Kubestrap.Scheduler.SecurePort, DefaultSchedulerPort)
}

// CSRApproverHealthPort is the port of the CSR approver's health endpoint on 127.0.0.1.
func (c *Config) CSRApproverHealthPort() int32 {
	return orDefault(c.Kubestrap.CSRApprover.HealthPort, DefaultCSRApproverHealthPort)
}

// ControlPlaneHealthTimeout is timeouts.controlPlaneComponentHealthCheck.
func (c *Config) ControlPlaneHealthTimeout() time.Duration {
	if t := c.Init.Timeouts; t != nil && t.ControlPlaneComponentHealthCheck != nil {
		return t.ControlPlaneComponentHealthCheck.Duration
	}
	return 4 * time.Minute
}

// KubernetesAPICallTimeout is timeouts.kubernetesAPICall.
func (c *Config) KubernetesAPICallTimeout() time.Duration {
	if t := c.Init.Timeouts; t != nil && t.KubernetesAPICall != nil {
		return t.KubernetesAPICall.Duration
	}
	return time.Minute
}

// IsIPv6 reports whether the advertise address is IPv6 (etcd's loopback URLs follow it).
func (c *Config) IsIPv6() bool {
	ip := net.ParseIP(c.AdvertiseAddress())
	return ip != nil && ip.To4() == nil
}

// LoopbackHost is 127.0.0.1, or ::1 for an IPv6 control plane.
func (c *Config) LoopbackHost() string {
	if c.IsIPv6() {
		return "::1"
	}
	return "127.0.0.1"
}

func orDefault(v, d int32) int32 {
	if v == 0 {
		return d
	}
	return v
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
