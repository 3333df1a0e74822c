// Package preflight owns the checks init and join run before they change anything: free ports
// (each address and port once), an advertise address that belongs to this host, an empty etcd
// data dir. Each check has kubeadm's name so --ignore-preflight-errors takes the same values.
// Whether the host can run the chosen mode is not checked here: runmode.Resolve only
// picks a runnable mode, and init fails at the end when it could not start an explicit one.
package preflight

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Check is one named precondition.
type Check struct {
	Name string
	Run  func() error
	// Warn makes a failure a warning instead of an error.
	Warn bool
	// key identifies what the check looks at; Run runs a check whose key an earlier one had
	// only once. The same port checked on two addresses that are one (an advertise address
	// that is the loopback address) is then reported once, not twice.
	key string
}

// System is the host as the checks see it; tests substitute it.
type System interface {
	// Listen tries to bind addr ("host:port") and releases it at once.
	Listen(addr string) error
	// InterfaceAddrs lists the addresses configured on this host.
	InterfaceAddrs() ([]net.IP, error)
}

// Host is the real System.
type Host struct{}

func (Host) Listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

func (Host) InterfaceAddrs() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			out = append(out, ipn.IP)
		}
	}
	return out, nil
}

// PortFree fails when addr cannot be bound, naming the port and what to do.
func PortFree(sys System, name, addr string) Check {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return Check{Name: "Port-" + port, key: "port " + net.JoinHostPort(host, port), Run: func() error {
		if err := sys.Listen(addr); err != nil {
			return fmt.Errorf("port %s (%s) is in use or cannot be bound on %s: %v; stop what listens there or choose another port in the configuration", port, name, addr, err)
		}
		return nil
	}}
}

// AddressOnHost fails when ip is not configured on any interface of this host, which would make
// the apiserver and etcd fail to bind it much later with a less clear message.
func AddressOnHost(sys System, ip string) Check {
	return Check{Name: "AdvertiseAddress", Run: func() error {
		want := net.ParseIP(ip)
		if want == nil {
			return fmt.Errorf("advertise address %q is not an IP address", ip)
		}
		addrs, err := sys.InterfaceAddrs()
		if err != nil {
			return fmt.Errorf("list this host's addresses: %w", err)
		}
		var have []string
		for _, a := range addrs {
			if a.Equal(want) {
				return nil
			}
			have = append(have, a.String())
		}
		sort.Strings(have)
		return fmt.Errorf("advertise address %s is not an address of this host (it has %s); pass --apiserver-advertise-address with one of them", ip, strings.Join(have, ", "))
	}}
}

// DirAvailable fails when dir exists and is not empty, unless reuse says the content is ours.
func DirAvailable(name, dir string, reuse func() bool) Check {
	return Check{Name: name, Run: func() error {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		if reuse != nil && reuse() {
			return nil
		}
		return fmt.Errorf("%s is not empty and was not created by a previous init of this root; remove it (or run 'kubestrap reset') first", dir)
	}}
}

// Result is what Run found.
type Result struct {
	Warnings []string
}

// Ignored reports whether the check called name is in ignore (--ignore-preflight-errors: names
// in any case, or "all").
func Ignored(name string, ignore []string) bool {
	return slices.ContainsFunc(ignore, func(i string) bool {
		return strings.EqualFold(i, "all") || strings.EqualFold(i, name)
	})
}

// Run runs every check; failures whose name is in ignore (or "all") become warnings. It returns
// every error together, so the user fixes them in one go.
func Run(checks []Check, ignore []string) (Result, error) {
	var res Result
	var errs []string
	seen := map[string]bool{}
	for _, c := range checks {
		if c.key != "" {
			if seen[c.key] {
				continue
			}
			seen[c.key] = true
		}
		err := c.Run()
		if err == nil {
			continue
		}
		if c.Warn || Ignored(c.Name, ignore) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("[%s]: %v", c.Name, err))
			continue
		}
		errs = append(errs, fmt.Sprintf("[ERROR %s]: %v", c.Name, err))
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("preflight checks failed:\n\t%s\nto ignore a check, pass --ignore-preflight-errors=<name>", strings.Join(errs, "\n\t"))
	}
	return res, nil
}

// HostPort joins host and port for Listen.
func HostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
