package e2e

// The three-host harness of the HA tests (ha_test.go): hosts that are network namespaces on a
// bridge of their own, each with its own address and root dir, and the TCP proxy that stands in
// for the load balancer in front of their apiservers (controlPlaneEndpoint).
//
// A host is a network namespace made with `ip netns add` and wired to the bridge kubestrap-ha0
// (10.215.0.1/24) by a veth; kubestrap runs in it through `ip netns exec`, and everything it
// starts (local mode's detached supervisor and its components) stays in that namespace. So "every
// process of a host" is exactly `ip netns pids <ns>`: Kill is kill -9 of all of them (a power
// cut), and the cleanup, which runs also when the test fails, kills them, deletes the namespaces,
// the veths and the bridge, and removes the hosts' root dirs. Leftovers of an interrupted run
// (the same names) are swept before a new run; their processes are killed only after checking
// that they are in that namespace and not in the machine's own.

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// haEnv set to "require" turns the harness's missing prerequisites into failures instead of
// skips (.ci/run sets it); "skip" skips the HA tests on purpose.
const haEnv = "KUBESTRAP_E2E_HA"

const (
	haBridge     = "kubestrap-ha0"
	haBridgeAddr = "10.215.0.1"
	haPrefixLen  = "/24"
	// haNSPrefix names the hosts' namespaces (kubestrap-ha-<host>); the sweep of an interrupted
	// run's leftovers only touches names with this prefix.
	haNSPrefix = "kubestrap-ha-"
	// haVethPrefix names the bridge side of each host's veth (at most 15 characters in all).
	haVethPrefix = "ksha-"
	// haEndpointPort is the proxy's port on the bridge address: not 6443, which a control plane
	// run on the machine itself (quick start, another engineer's test) may hold on every address.
	haEndpointPort = 16443
)

// needHAHarness skips the test (or fails it, with KUBESTRAP_E2E_HA=require) when this machine
// cannot make network namespaces.
func needHAHarness(t *testing.T) {
	t.Helper()
	reason := haPrerequisites()
	if reason == "" {
		return
	}
	if os.Getenv(haEnv) == "require" {
		t.Fatalf("the HA harness is required (%s=require) but cannot run here: %s", haEnv, reason)
	}
	t.Skipf("needs the HA harness (network namespaces on a bridge): %s; set %s=require to make this a failure", reason, haEnv)
}

func haPrerequisites() string {
	if os.Getenv(haEnv) == "skip" {
		return haEnv + "=skip"
	}
	if os.Geteuid() != 0 {
		return "not root (the harness creates network namespaces, veths and a bridge)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "ip (iproute2) is not on PATH"
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Sprintf("ip netns does not work here: %v: %s", err, bytes.TrimSpace(out))
	}
	return ""
}

// haCluster is the bridge, the hosts on it and the endpoint proxy.
type haCluster struct {
	t     *testing.T
	base  string // holds the hosts' root dirs; removed by the cleanup
	hosts []*haHost
	proxy *haProxy
	// netnsMounted: /run/netns was a mount point before the harness ran. iproute2 makes it one
	// (a bind mount onto itself) when it adds the first namespace; the cleanup undoes that
	// when the harness made it, so a run leaves the mount table as it found it.
	netnsMounted bool
}

// haHost is one host: a network namespace with an address on the bridge and a root dir.
type haHost struct {
	Name string
	NS   string
	Veth string
	Addr string
	Root string
}

// newHACluster makes the bridge and hosts named names (addresses 10.215.0.11, .12, ...) and the
// endpoint proxy in front of the first nControlPlanes hosts' port 6443. Everything is removed
// when the test ends.
func newHACluster(t *testing.T, nControlPlanes int, names ...string) *haCluster {
	t.Helper()
	needHAHarness(t)
	sweepHA(t)
	base, err := os.MkdirTemp("", "kubestrap-ha-")
	if err != nil {
		t.Fatal(err)
	}
	c := &haCluster{t: t, base: base}
	c.netnsMounted, _ = mountinfo.Mounted(netnsDir)
	t.Cleanup(c.destroy)

	ipCmd(t, "link", "add", haBridge, "type", "bridge")
	ipCmd(t, "addr", "add", haBridgeAddr+haPrefixLen, "dev", haBridge)
	ipCmd(t, "link", "set", haBridge, "up")
	for i, name := range names {
		h := &haHost{
			Name: name,
			NS:   haNSPrefix + name,
			Veth: haVethPrefix + name,
			Addr: fmt.Sprintf("10.215.0.%d", 11+i),
			Root: filepath.Join(base, name),
		}
		if len(h.Veth) > 15 {
			t.Fatalf("host name %q is too long for a veth name", name)
		}
		c.hosts = append(c.hosts, h)
		if err := os.MkdirAll(h.Root, 0o755); err != nil {
			t.Fatal(err)
		}
		ipCmd(t, "netns", "add", h.NS)
		ipCmd(t, "link", "add", h.Veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
		ipCmd(t, "link", "set", h.Veth, "master", haBridge, "up")
		ipCmd(t, "-n", h.NS, "link", "set", "lo", "up")
		ipCmd(t, "-n", h.NS, "addr", "add", h.Addr+haPrefixLen, "dev", "eth0")
		ipCmd(t, "-n", h.NS, "link", "set", "eth0", "up")
		// A default route, so that what looks for "this host's address" (the default route's
		// interface) finds eth0, as on a real machine.
		ipCmd(t, "-n", h.NS, "route", "add", "default", "via", haBridgeAddr)
	}
	var backends []string
	for _, h := range c.hosts[:nControlPlanes] {
		backends = append(backends, net.JoinHostPort(h.Addr, "6443"))
	}
	p, err := startHAProxy(net.JoinHostPort(haBridgeAddr, strconv.Itoa(haEndpointPort)), backends)
	if err != nil {
		t.Fatal(err)
	}
	c.proxy = p
	return c
}

// Endpoint is controlPlaneEndpoint: the proxy's address.
func (c *haCluster) Endpoint() string { return c.proxy.addr }

// Host returns the host called name.
func (c *haCluster) Host(name string) *haHost {
	for _, h := range c.hosts {
		if h.Name == name {
			return h
		}
	}
	c.t.Fatalf("no HA host %q", name)
	return nil
}

// Run runs kubestrap in host h with its root dir (appended as --root-dir) and no stdin.
func (h *haHost) Run(t *testing.T, args ...string) result {
	t.Helper()
	full := append([]string{"netns", "exec", h.NS, binary}, args...)
	full = append(full, "--root-dir", h.Root)
	cmd := exec.Command("ip", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubestrap %s in host %s: %v", strings.Join(args, " "), h.Name, err)
	}
	return r
}

// MustRun is Run that fails the test on a non-zero exit.
func (h *haHost) MustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := h.Run(t, args...)
	if r.code != 0 {
		t.Fatalf("kubestrap %s in host %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), h.Name, r.code, r.stdout, r.stderr)
	}
	return r
}

// Pids are the processes in the host's network namespace.
func (h *haHost) Pids() ([]int, error) {
	return nsPids(h.NS)
}

// Kill kills every process of the host with SIGKILL, as a power cut would, and waits until none
// is left (a supervisor could start a component between the listing and its own death).
func (h *haHost) Kill(t *testing.T) {
	t.Helper()
	if err := killNS(h.NS, 2*time.Minute); err != nil {
		t.Fatalf("killing host %s: %v", h.Name, err)
	}
}

// destroy kills every host's processes and removes the proxy, namespaces, veths, bridge and root
// dirs; it reports what it could not remove.
func (c *haCluster) destroy() {
	t := c.t
	if c.proxy != nil {
		c.proxy.Close()
	}
	for _, h := range c.hosts {
		if err := killNS(h.NS, 2*time.Minute); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if out, err := exec.Command("ip", "netns", "del", h.NS).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v: %s", h.NS, err, bytes.TrimSpace(out))
		}
		// Deleting the namespace deletes eth0 and so its peer; this is for a host whose
		// namespace was never made.
		exec.Command("ip", "link", "del", h.Veth).Run()
	}
	if out, err := exec.Command("ip", "link", "del", haBridge).CombinedOutput(); err != nil {
		t.Errorf("cleanup: ip link del %s: %v: %s", haBridge, err, bytes.TrimSpace(out))
	}
	if err := os.RemoveAll(c.base); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if mounted, _ := mountinfo.Mounted(netnsDir); mounted && !c.netnsMounted {
		if entries, err := os.ReadDir(netnsDir); err == nil && len(entries) == 0 {
			if err := unix.Unmount(netnsDir, unix.MNT_DETACH); err != nil {
				t.Errorf("cleanup: unmounting %s, which iproute2 mounted for the harness's namespaces: %v", netnsDir, err)
			}
		}
	}
	c.checkNothingLeft()
}

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// checkNothingLeft fails the test when a namespace, link or process of the harness survived.
func (c *haCluster) checkNothingLeft() {
	t := c.t
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, haNSPrefix) {
			t.Errorf("cleanup left the network namespace %s", strings.Fields(line)[0])
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, " "+haBridge+":") || strings.Contains(line, " "+haVethPrefix) {
			t.Errorf("cleanup left a link: %s", line)
		}
	}
	if left := processesUnder(c.base); len(left) > 0 {
		t.Errorf("cleanup left processes of %s: %v", c.base, left)
	}
}

// sweepHA removes what an interrupted run of the HA tests left: the harness's namespaces (after
// killing their processes), veths and bridge.
func sweepHA(t *testing.T) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], haNSPrefix) {
			continue
		}
		t.Logf("removing network namespace %s left by an earlier run", f[0])
		if err := killNS(f[0], time.Minute); err != nil {
			t.Fatalf("sweeping %s: %v", f[0], err)
		}
		exec.Command("ip", "netns", "del", f[0]).Run()
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name == haBridge || strings.HasPrefix(name, haVethPrefix) {
			exec.Command("ip", "link", "del", name).Run()
		}
	}
}

// nsPids lists the processes in the network namespace ns, each checked to be in it and not in
// the machine's own (machineNetNS).
func nsPids(ns string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("ip netns pids %s: %v: %s", ns, err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("ip netns pids %s: %v", ns, err)
	}
	machine, err := machineNetNS()
	if err != nil {
		return nil, err
	}
	var nsInode string
	if fi, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
		nsInode = fmt.Sprintf("net:[%d]", fi.Sys().(*syscall.Stat_t).Ino)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			continue // gone already
		}
		if link == machine || (nsInode != "" && link != nsInode) {
			return nil, fmt.Errorf("ip netns pids %s listed pid %d, whose network namespace is %s: refusing to kill it", ns, pid, link)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// machineNetNS is the machine's own network namespace: the test's, which must be PID 1's where
// PID 1's can be read (in a container it may not be).
func machineNetNS() (string, error) {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return "", err
	}
	if one, err := os.Readlink("/proc/1/ns/net"); err == nil && one != self {
		return "", fmt.Errorf("the test runs in network namespace %s, not the machine's (%s): refusing to manage the harness's processes from here", self, one)
	}
	return self, nil
}

// killNS kills every process in ns with SIGKILL until none is left or timeout passes.
func killNS(ns string, timeout time.Duration) error {
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		pids, err := nsPids(ns)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of network namespace %s still there after %s of SIGKILL", pids, ns, timeout)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// haProxy is the load balancer in front of the control-plane hosts' apiservers: a TCP proxy on
// the bridge address that sends each connection to the next backend whose /readyz answered ok at
// its last check (every 500 ms), as a load balancer with an HTTP health check does, and to any
// that accepts a connection while none is ready. A killed host is dropped within a check; a host
// whose apiserver is still starting gets no traffic.
type haProxy struct {
	addr     string
	ln       net.Listener
	backends []string

	mu    sync.Mutex
	ready map[string]bool
	next  int

	stop chan struct{}
	wg   sync.WaitGroup
}

func startHAProxy(addr string, backends []string) (*haProxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("the endpoint proxy: %w", err)
	}
	p := &haProxy{addr: addr, ln: ln, backends: backends, ready: map[string]bool{}, stop: make(chan struct{})}
	p.wg.Add(2)
	go p.check()
	go p.serve()
	return p, nil
}

// Ready are the backends whose last health check passed.
func (p *haProxy) Ready() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, b := range p.backends {
		if p.ready[b] {
			out = append(out, b)
		}
	}
	return out
}

func (p *haProxy) check() {
	defer p.wg.Done()
	// A health check needs no trust in the backend: it only reads the status code. /readyz is
	// readable anonymously (system:public-info-viewer), as load balancers probe it.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		for _, b := range p.backends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok := false
				if resp, err := client.Get("https://" + b + "/readyz"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK
				}
				p.mu.Lock()
				p.ready[b] = ok
				p.mu.Unlock()
			}()
		}
		wg.Wait()
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

// order is the backends to try for one connection: the ready ones from the next in turn, then
// the others.
func (p *haProxy) order() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.backends)
	start := p.next
	p.next = (p.next + 1) % n
	var ready, rest []string
	for i := range n {
		b := p.backends[(start+i)%n]
		if p.ready[b] {
			ready = append(ready, b)
		} else {
			rest = append(rest, b)
		}
	}
	return append(ready, rest...)
}

func (p *haProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

func (p *haProxy) forward(c net.Conn) {
	defer c.Close()
	var up net.Conn
	for _, b := range p.order() {
		var err error
		if up, err = net.DialTimeout("tcp", b, 2*time.Second); err == nil {
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		// Half-close, so the other direction can finish; then both end.
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	select {
	case <-done:
	case <-p.stop:
	}
	// One direction ended: give the other a moment, then close both (a killed backend never
	// sends its FIN).
	select {
	case <-done:
	case <-p.stop:
	case <-time.After(5 * time.Second):
	}
}

// Close stops the proxy and its connections.
func (p *haProxy) Close() {
	close(p.stop)
	p.ln.Close()
	p.wg.Wait()
}

// tree lists every path under root, relative to it.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
