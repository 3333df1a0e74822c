package config

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Host is what dynamic defaulting asks of the machine. It is an interface so that loading a
// configuration in tests needs neither the real hostname nor a network.
type Host interface {
	// Hostname is the machine's host name (used, lower-cased, as the default node name).
	Hostname() (string, error)
	// DefaultIPv4 is the address the API server advertises when none is configured.
	DefaultIPv4() (net.IP, error)
}

// SystemHost is the real machine. Its zero value reads /proc/net/route and the host's network
// interfaces; the fields exist so tests can replace those two inputs.
type SystemHost struct {
	// RouteFile is the IPv4 routing table in /proc/net/route format; empty means /proc/net/route.
	RouteFile string
	// Interfaces lists the host's interfaces with their addresses; nil means the real ones.
	Interfaces func() ([]Interface, error)
}

// Interface is a network interface as DefaultIPv4 sees it.
type Interface struct {
	Name  string
	Flags net.Flags
	Addrs []net.Addr
}

var _ Host = SystemHost{}

// Hostname returns os.Hostname.
func (SystemHost) Hostname() (string, error) { return os.Hostname() }

// DefaultIPv4 follows kubeadm: the first global unicast IPv4 address of the interface that carries
// the default route (lowest metric first). A host without a default route is common for kubestrap's
// local mode (a container with no network, a laptop offline), so it falls back to the only
// non-loopback IPv4 address when there is exactly one, and to 127.0.0.1 when the host has nothing
// but loopback. Several candidates and no default route is an error: guessing would bake an
// arbitrary address into every certificate.
func (h SystemHost) DefaultIPv4() (net.IP, error) {
	ifaces, err := h.interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	byName := map[string]Interface{}
	for _, i := range ifaces {
		byName[i.Name] = i
	}
	routeFile := h.RouteFile
	if routeFile == "" {
		routeFile = "/proc/net/route"
	}
	routes, err := readDefaultRoutes(routeFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, r := range routes {
		if i, ok := byName[r.iface]; ok && i.Flags&net.FlagUp != 0 {
			if ip := globalIPv4(i.Addrs); ip != nil {
				return ip, nil
			}
		}
	}
	var candidates []net.IP
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		for _, a := range i.Addrs {
			if ip := addrIP(a); ip != nil && ip.To4() != nil && ip.IsGlobalUnicast() {
				candidates = append(candidates, ip.To4())
			}
		}
	}
	switch len(candidates) {
	case 0:
		return net.IPv4(127, 0, 0, 1).To4(), nil
	case 1:
		return candidates[0], nil
	}
	names := make([]string, len(candidates))
	for i, c := range candidates {
		names[i] = c.String()
	}
	return nil, fmt.Errorf("no default IPv4 route and several addresses to choose from (%s): set the advertise address explicitly", strings.Join(names, ", "))
}

func (h SystemHost) interfaces() ([]Interface, error) {
	if h.Interfaces != nil {
		return h.Interfaces()
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]Interface, 0, len(ifs))
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", i.Name, err)
		}
		out = append(out, Interface{Name: i.Name, Flags: i.Flags, Addrs: addrs})
	}
	return out, nil
}

type route struct {
	iface  string
	metric int
}

// readDefaultRoutes returns the usable default routes of a /proc/net/route table, best first.
//
// This is the one piece of apimachinery's k8s.io/apimachinery/pkg/util/net (ChooseHostInterface,
// ResolveBindAddress, ChooseBindAddressForInterface: kubeadm's choice of advertise address) that
// kubestrap keeps by hand, for two reasons. It has no seam: the route files are constants, and the
// interface lister and the route-based chooser are unexported, so every test of it would read the
// real /proc/net/route and the real interfaces. And it chooses differently, where kubestrap's
// choice is pinned by TestSystemHostDefaultIPv4: it takes default routes in file order, ignoring
// their metric and RTF_UP flag; it falls back to IPv6 routes and returns an IPv6 address, which
// DefaultIPv4 must not; and with no usable default route it fails (or, without a route file,
// takes the first global address, IPv6 when there is no IPv4) where kubestrap takes the only IPv4
// address or 127.0.0.1, and refuses to guess between several.
func readDefaultRoutes(file string) ([]route, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	routes, err := parseDefaultRoutes(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return routes, nil
}

func parseDefaultRoutes(r io.Reader) ([]route, error) {
	const rtfUp = 0x1
	var routes []route
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) < 8 || f[0] == "Iface" {
			continue
		}
		dest, err1 := hexIPv4(f[1])
		mask, err2 := hexIPv4(f[7])
		flags, err3 := strconv.ParseUint(f[3], 16, 32)
		metric, err4 := strconv.Atoi(f[6])
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, fmt.Errorf("malformed route %q: %w", sc.Text(), err)
		}
		if dest.Equal(net.IPv4zero) && mask.Equal(net.IPv4zero) && flags&rtfUp != 0 {
			routes = append(routes, route{iface: f[0], metric: metric})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].metric < routes[j].metric })
	return routes, nil
}

// hexIPv4 decodes the kernel's host-byte-order (little-endian on every platform kubestrap runs on)
// hex address notation.
func hexIPv4(s string) (net.IP, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return nil, fmt.Errorf("bad address %q", s)
	}
	v := binary.LittleEndian.Uint32(b)
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip, nil
}

func globalIPv4(addrs []net.Addr) net.IP {
	for _, a := range addrs {
		if ip := addrIP(a); ip != nil && ip.To4() != nil && ip.IsGlobalUnicast() {
			return ip.To4()
		}
	}
	return nil
}

func addrIP(a net.Addr) net.IP {
	switch v := a.(type) {
	case *net.IPNet:
		return v.IP
	case *net.IPAddr:
		return v.IP
	}
	return nil
}
