package config

import (
	"testing"
	"time"
)

// The derived values other packages build certificates, kubeconfigs and flags from, on a
// configuration that went through LoadInit.
func TestDerivedValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		o                    Overrides
		localURL, clusterURL string
		epHost               string
		svc1, dns            string
		loopback             string
	}{
		{"defaults", Overrides{}, "https://192.168.0.10:6443", "https://192.168.0.10:6443", "", "10.96.0.1", "10.96.0.10", "127.0.0.1"},
		{"endpoint without port gets bindPort", Overrides{ControlPlaneEndpoint: "api.example.com", BindPort: 7443},
			"https://192.168.0.10:7443", "https://api.example.com:7443", "api.example.com", "10.96.0.1", "10.96.0.10", "127.0.0.1"},
		{"endpoint with port kept", Overrides{ControlPlaneEndpoint: "api.example.com:443"},
			"https://192.168.0.10:6443", "https://api.example.com:443", "api.example.com", "10.96.0.1", "10.96.0.10", "127.0.0.1"},
		{"IPv6", Overrides{AdvertiseAddress: "fd00::10", ControlPlaneEndpoint: "fd00::1", ServiceCIDR: "fd00:10:96::/112"},
			"https://[fd00::10]:6443", "https://[fd00::1]:6443", "fd00::1", "fd00:10:96::1", "fd00:10:96::a", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadInit("", tc.o, testHost)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.LocalAPIServerURL(); got != tc.localURL {
				t.Errorf("LocalAPIServerURL %s, want %s", got, tc.localURL)
			}
			if got := c.ControlPlaneURL(); got != tc.clusterURL {
				t.Errorf("ControlPlaneURL %s, want %s", got, tc.clusterURL)
			}
			if got := c.ControlPlaneEndpointHost(); got != tc.epHost {
				t.Errorf("ControlPlaneEndpointHost %q, want %q", got, tc.epHost)
			}
			if ip, err := c.ServiceIP(1); err != nil || ip.String() != tc.svc1 {
				t.Errorf("ServiceIP(1) %v %v, want %s", ip, err, tc.svc1)
			}
			if ip, err := c.ServiceIP(10); err != nil || ip.String() != tc.dns {
				t.Errorf("ServiceIP(10) %v %v, want %s", ip, err, tc.dns)
			}
			if got := c.LoopbackHost(); got != tc.loopback {
				t.Errorf("LoopbackHost %s, want %s", got, tc.loopback)
			}
			if c.CertValidity() != 365*24*time.Hour || c.CAValidity() != 3650*24*time.Hour {
				t.Errorf("validity %v %v", c.CertValidity(), c.CAValidity())
			}
			if c.ControlPlaneHealthTimeout() != 4*time.Minute || c.KubernetesAPICallTimeout() != time.Minute {
				t.Errorf("timeouts %v %v", c.ControlPlaneHealthTimeout(), c.KubernetesAPICallTimeout())
			}
			if !c.LocalEtcd() || c.EtcdClientPort() != 2379 || c.EtcdPeerPort() != 2380 || c.EtcdMetricsPort() != 2381 ||
				c.ControllerManagerPort() != 10257 || c.SchedulerPort() != 10259 {
				t.Errorf("ports %d %d %d %d %d", c.EtcdClientPort(), c.EtcdPeerPort(), c.EtcdMetricsPort(), c.ControllerManagerPort(), c.SchedulerPort())
			}
		})
	}
}
