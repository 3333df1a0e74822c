package preflight

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fakeSystem struct {
	busy  map[string]bool
	addrs []net.IP
}

func (f fakeSystem) Listen(addr string) error {
	if f.busy[addr] {
		return errors.New("address already in use")
	}
	return nil
}
func (f fakeSystem) InterfaceAddrs() ([]net.IP, error) { return f.addrs, nil }

func TestChecks(t *testing.T) {
	t.Parallel()
	sys := fakeSystem{busy: map[string]bool{":6443": true}, addrs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.5")}}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "member"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		check   Check
		wantErr string
	}{
		{"port free", PortFree(sys, "etcd", "127.0.0.1:2379"), ""},
		{"port busy", PortFree(sys, "kube-apiserver", ":6443"), "port 6443 (kube-apiserver) is in use"},
		{"address on host", AddressOnHost(sys, "10.0.0.5"), ""},
		{"address elsewhere", AddressOnHost(sys, "203.0.113.7"), "203.0.113.7 is not an address of this host (it has 10.0.0.5, 127.0.0.1)"},
		{"not an IP", AddressOnHost(sys, "nope"), "not an IP address"},
		{"dir missing", DirAvailable("D", filepath.Join(full, "missing"), nil), ""},
		{"dir empty", DirAvailable("D", t.TempDir(), nil), ""},
		{"dir not empty", DirAvailable("D", full, nil), "is not empty"},
		{"dir ours", DirAvailable("D", full, func() bool { return true }), ""},
	}
	for _, tc := range tests {
		err := tc.check.Run()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if got := PortFree(sys, "x", "127.0.0.1:2380").Name; got != "Port-2380" {
		t.Errorf("check name %q, want kubeadm's Port-2380", got)
	}
}

func TestRunReportsAllAndIgnores(t *testing.T) {
	t.Parallel()
	fail := func(name string) Check {
		return Check{Name: name, Run: func() error { return errors.New(name + " failed") }}
	}
	checks := []Check{fail("Port-6443"), fail("Port-2379"), {Name: "Mem", Warn: true, Run: func() error { return errors.New("low") }}}

	res, err := Run(checks, nil)
	if err == nil || !strings.Contains(err.Error(), "[ERROR Port-6443]") || !strings.Contains(err.Error(), "[ERROR Port-2379]") {
		t.Errorf("err = %v, want both failures", err)
	}
	if len(res.Warnings) != 1 {
		t.Errorf("warnings = %v, want the Warn check", res.Warnings)
	}
	if _, err := Run(checks, []string{"port-6443", "Port-2379"}); err != nil {
		t.Errorf("ignored checks still fail: %v", err)
	}
	if res, err := Run(checks, []string{"all"}); err != nil || len(res.Warnings) != 3 {
		t.Errorf("ignore all: %v %v", res.Warnings, err)
	}
}

// TestSamePortOnceCheckedOnce: with the loopback address as advertise address, init checks etcd's
// client port on "two" addresses that are one; a busy port must be reported once.
func TestSamePortOnceCheckedOnce(t *testing.T) {
	t.Parallel()
	sys := fakeSystem{busy: map[string]bool{"127.0.0.1:2379": true, "[::1]:2379": true}}
	checks := []Check{
		PortFree(sys, "etcd client", "127.0.0.1:2379"),
		PortFree(sys, "etcd client", "127.0.0.1:2379"),
		PortFree(sys, "etcd client", "[::1]:2379"),
		PortFree(sys, "etcd client", "[0:0:0:0:0:0:0:1]:2379"),
	}
	_, err := Run(checks, nil)
	if err == nil {
		t.Fatal("no error for a busy port")
	}
	if n := strings.Count(err.Error(), "[ERROR Port-2379]"); n != 2 {
		t.Errorf("port 2379 reported %d times, want once per distinct address (127.0.0.1, ::1):\n%v", n, err)
	}
	// Different ports on the same address are still all checked.
	sys = fakeSystem{busy: map[string]bool{"127.0.0.1:2379": true, "127.0.0.1:2380": true}}
	_, err = Run([]Check{PortFree(sys, "etcd client", "127.0.0.1:2379"), PortFree(sys, "etcd peer", "127.0.0.1:2380")}, nil)
	if err == nil || !strings.Contains(err.Error(), "Port-2379") || !strings.Contains(err.Error(), "Port-2380") {
		t.Errorf("err = %v, want both ports", err)
	}
}

func TestIgnored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ignore []string
		want   bool
	}{
		{"EtcdQuorum", nil, false},
		{"EtcdQuorum", []string{"etcdquorum"}, true},
		{"EtcdQuorum", []string{"KubeletMounts", "ALL"}, true},
		{"EtcdQuorum", []string{"KubeletMounts"}, false},
		{"EtcdQuorum", []string{"EtcdQuorumX"}, false},
	} {
		if got := Ignored(tc.name, tc.ignore); got != tc.want {
			t.Errorf("Ignored(%q, %q) = %v, want %v", tc.name, tc.ignore, got, tc.want)
		}
	}
}
