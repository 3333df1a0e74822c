package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A /proc/net/route with two default routes (metrics 100 and 50) and a link route.
const routeTable = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	100	00000000	0	0	0
wlan0	00000000	0101A8C0	0003	0	0	50	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
`

func cidr(s string) net.Addr {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

func TestSystemHostDefaultIPv4(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withDefaults := write("route", routeTable)
	noDefault := write("route-none", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
	missing := filepath.Join(dir, "does-not-exist")
	// wlan0's default route comes first and has the lower metric but is not up (flags 0002, no RTF_UP).
	notUp := write("route-not-up", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"+
		"wlan0\t00000000\t0101A8C0\t0002\t0\t0\t50\t00000000\t0\t0\t0\n"+
		"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n")
	// One default route, through eth0.
	viaEth0 := write("route-eth0", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"+
		"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n")

	lo := Interface{Name: "lo", Flags: net.FlagUp | net.FlagLoopback, Addrs: []net.Addr{cidr("127.0.0.1/8"), cidr("::1/128")}}
	eth0 := Interface{Name: "eth0", Flags: net.FlagUp, Addrs: []net.Addr{cidr("fe80::1/64"), cidr("192.0.2.2/24")}}
	wlan0 := Interface{Name: "wlan0", Flags: net.FlagUp, Addrs: []net.Addr{cidr("192.168.1.20/24")}}
	wlan0Down := wlan0
	wlan0Down.Flags = 0
	eth0V6 := Interface{Name: "eth0", Flags: net.FlagUp, Addrs: []net.Addr{cidr("fe80::1/64"), cidr("2001:db8::2/64")}}
	ifs := func(list ...Interface) func() ([]Interface, error) {
		return func() ([]Interface, error) { return list, nil }
	}

	for _, tc := range []struct {
		name   string
		routes string
		ifaces []Interface
		want   string
		errSub string
	}{
		{"lowest metric default route wins", withDefaults, []Interface{lo, eth0, wlan0}, "192.168.1.20", ""},
		{"down interface skipped", withDefaults, []Interface{lo, eth0, wlan0Down}, "192.0.2.2", ""},
		{"no default route, one address", noDefault, []Interface{lo, eth0}, "192.0.2.2", ""},
		{"no route table, one address", missing, []Interface{lo, eth0}, "192.0.2.2", ""},
		{"only loopback", noDefault, []Interface{lo}, "127.0.0.1", ""},
		{"no default route, several addresses", noDefault, []Interface{lo, eth0, wlan0}, "", "several addresses"},
		{"default route not up skipped", notUp, []Interface{lo, eth0, wlan0}, "192.0.2.2", ""},
		{"default route interface without IPv4: never an IPv6 address", viaEth0, []Interface{lo, eth0V6, wlan0}, "192.168.1.20", ""},
		{"no route table, several addresses", missing, []Interface{lo, eth0, wlan0}, "", "several addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := SystemHost{RouteFile: tc.routes, Interfaces: ifs(tc.ifaces...)}
			ip, err := h.DefaultIPv4()
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("want error containing %q, got %v (%v)", tc.errSub, err, ip)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ip.String() != tc.want {
				t.Errorf("got %s, want %s", ip, tc.want)
			}
		})
	}

	t.Run("malformed route table", func(t *testing.T) {
		t.Parallel()
		bad := write("route-bad", "Iface\tDestination\nnope\tZZZZ\t0\t0003\t0\t0\t0\t00000000\n")
		if _, err := (SystemHost{RouteFile: bad, Interfaces: ifs(lo)}).DefaultIPv4(); err == nil {
			t.Error("want an error")
		}
	})
}

// TestSystemHostReal only checks that the real implementation runs here; what it finds depends on
// the machine.
func TestSystemHostReal(t *testing.T) {
	t.Parallel()
	h := SystemHost{}
	if name, err := h.Hostname(); err != nil || name == "" {
		t.Errorf("Hostname: %q %v", name, err)
	}
	ip, err := h.DefaultIPv4()
	t.Logf("DefaultIPv4 on this machine: %v %v", ip, err)
	if err == nil && ip.To4() == nil {
		t.Errorf("DefaultIPv4 returned a non-IPv4 address %v", ip)
	}
}
