package config

import (
	"fmt"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// ApplyDynamicDefaults fills in what depends on the host, as kubeadm does at run time: the node
// name (the lower-cased hostname), the advertise address (the default-route interface's IPv4), the
// control-plane taint, lower-cased certificate SANs and a "unix://" scheme on a bare CRI socket
// path. What cannot be detected is returned as field errors that say which setting to provide; the
// field stays empty. It deliberately does not generate a bootstrap token (see EnsureBootstrapToken).
func ApplyDynamicDefaults(c *Config, host Host) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nodeNameDefault(&c.Init.NodeRegistration, host, field.NewPath("nodeRegistration", "name"))...)
	if c.Init.LocalAPIEndpoint.AdvertiseAddress == "" {
		ip, err := host.DefaultIPv4()
		if err != nil {
			errs = append(errs, field.Required(field.NewPath("localAPIEndpoint", "advertiseAddress"),
				fmt.Sprintf("could not detect this host's address (%v): set --apiserver-advertise-address or localAPIEndpoint.advertiseAddress", err)))
		} else {
			c.Init.LocalAPIEndpoint.AdvertiseAddress = ip.String()
		}
	}
	// nil means "not said": kubeadm keeps ordinary workloads off control-plane nodes unless the
	// file lists taints explicitly (an empty list means none).
	if c.Init.NodeRegistration.Taints == nil {
		c.Init.NodeRegistration.Taints = []Taint{{Key: ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule}}
	}
	c.Init.NodeRegistration.CRISocket = socketURL(c.Init.NodeRegistration.CRISocket)
	// Certificates compare names case-insensitively but store what they are given; lower-casing
	// first keeps the SANs canonical and lets DNS-1123 validation apply.
	lower(c.Cluster.APIServer.CertSANs)
	if l := c.Cluster.Etcd.Local; l != nil {
		lower(l.ServerCertSANs)
		lower(l.PeerCertSANs)
	}
	return errs
}

func nodeNameDefault(n *NodeRegistration, host Host, path *field.Path) field.ErrorList {
	name := n.Name
	if strings.TrimSpace(name) == "" {
		h, err := host.Hostname()
		if err != nil || strings.TrimSpace(h) == "" {
			if err == nil {
				err = fmt.Errorf("the hostname is empty")
			}
			return field.ErrorList{field.Required(path,
				fmt.Sprintf("could not detect the hostname (%v): set --node-name or nodeRegistration.name", err))}
		}
		name = h
	}
	n.Name = strings.ToLower(strings.TrimSpace(name))
	return nil
}

// socketURL gives a bare absolute socket path the unix:// scheme kubeadm's own defaulting adds.
func socketURL(s string) string {
	if filepath.IsAbs(s) {
		return "unix://" + s
	}
	return s
}

func lower(ss []string) {
	for i := range ss {
		ss[i] = strings.ToLower(ss[i])
	}
}

// EnsureBootstrapToken gives every bootstrap token entry without a token string a fresh random
// token (and adds a defaulted entry when there is none). init calls it; LoadInit does not, so that
// loading a configuration stays free of side effects and `config print init-defaults` stays
// deterministic.
func EnsureBootstrapToken(c *Config) error {
	if len(c.Init.BootstrapTokens) == 0 {
		c.Init.BootstrapTokens = []BootstrapToken{{}}
		setTokenDefaults(&c.Init.BootstrapTokens[0])
	}
	for i := range c.Init.BootstrapTokens {
		if c.Init.BootstrapTokens[i].Token != "" {
			continue
		}
		tok, err := bootstraputil.GenerateBootstrapToken()
		if err != nil {
			return fmt.Errorf("generating a bootstrap token: %w", err)
		}
		c.Init.BootstrapTokens[i].Token = tok
	}
	return nil
}
