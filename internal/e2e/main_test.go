// Package e2e runs the real kubestrap binary end to end: it builds it once per test run, brings up
// control planes in temporary root dirs, talks to them with client-go and kubectl, and checks that
// nothing is left behind. Skipped with -short.
package e2e

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the kubestrap executable under test.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped with -short")
		os.Exit(0)
	}
	if err := machineLock(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if b := os.Getenv("KUBESTRAP_E2E_BINARY"); b != "" {
		binary = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "kubestrap-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "kubestrap")
	// The README's build: the release shape (a front program carrying the component program).
	build := exec.Command(filepath.Join("..", "..", "hack", "build.sh"), "-o", binary)
	var out bytes.Buffer
	build.Stdout, build.Stderr = &out, &out
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building kubestrap: %v\n%s", err, out.String())
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// machineLock serialises runs of this package on one machine. The tests' control planes listen
// on fixed ports (each test its own offset), so two runs at once, from two checkouts or two
// terminals, would take each other's ports and fail at random; the second run waits instead.
// The lock is held until the process exits.
func machineLock() error {
	path := filepath.Join(os.TempDir(), "kubestrap-e2e.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("e2e: opening the machine lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: another run of these tests holds %s (the tests use fixed ports); waiting for it\n", path)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return fmt.Errorf("e2e: locking %s: %w", path, err)
		}
	}
	lockFile = f // kept referenced: a collected *os.File is closed, which would drop the lock
	return nil
}

var lockFile *os.File

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// run runs kubestrap with args and no stdin.
func run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kubestrap %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustRun runs kubestrap and fails the test on a non-zero exit.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := run(t, args...)
	if r.code != 0 {
		t.Fatalf("kubestrap %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// processesUnder lists the pids whose command line mentions root.
func processesUnder(root string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(root)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// writeConfig writes a config file that moves every port by offset, so tests and a concurrently
// running control plane on the default ports do not collide.
func writeConfig(t testing.TB, dir string, offset int) string {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.0.1
  bindPort: %d
nodeRegistration:
  name: e2e-node
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
---
apiVersion: kubestrap.io/v1alpha1
kind: KubestrapConfiguration
mode: local
etcd:
  clientPort: %d
  peerPort: %d
  metricsPort: %d
controllerManager:
  securePort: %d
scheduler:
  securePort: %d
csrApprover:
  healthPort: %d
`, 6443+offset, 2379+offset, 2380+offset, 2381+offset, 10257+offset, 10259+offset, 10261+offset)
	path := filepath.Join(dir, "kubestrap.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// netListen holds a port open for the port-in-use test.
type netListen struct{}

func (netListen) listen(addr string) (interface{ Close() error }, error) {
	return net.Listen("tcp", addr)
}

// killInitDuringWait starts init and kills it with SIGKILL as soon as it reports the
// wait-control-plane phase: an init that stopped halfway, with its supervisor already detached.
func killInitDuringWait(t *testing.T, root, cfgFile string) {
	t.Helper()
	cmd := exec.Command(binary, "init", "--root-dir", root, "--config", cfgFile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), "[wait-control-plane]") {
				found = true
				seen <- true
			}
		}
		if !found {
			seen <- false
		}
	}()
	select {
	case ok := <-seen:
		if !ok {
			cmd.Wait()
			t.Fatal("init ended without a [wait-control-plane] line")
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("no [wait-control-plane] line within 2 minutes")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}
