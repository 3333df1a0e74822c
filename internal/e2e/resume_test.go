package e2e

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freezeEtcd stops (SIGSTOP) the etcd of root once it listens on its client port, and returns a
// function that lets it continue (also called at cleanup). A stopped etcd keeps its ports bound
// but answers nothing: its health check and the apiserver's /readyz cannot succeed until it
// continues, however fast or slow the machine is.
func freezeEtcd(t *testing.T, root string, clientPort int) (resume func()) {
	t.Helper()
	var pid int
	for deadline := time.Now().Add(2 * time.Minute); pid == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("etcd did not start within 2 minutes")
		}
		b, err := os.ReadFile(filepath.Join(root, "run/kubestrap/etcd.pid"))
		if err != nil {
			continue
		}
		p, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPort)), time.Second); err == nil {
			c.Close()
			pid = p
		}
	}
	if argv := cmdline(t, pid); filepath.Base(argv[0]) != "etcd" {
		t.Fatalf("pid %d is %q, not etcd", pid, argv)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume = func() {
		if !resumed {
			resumed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	return resume
}

// TestInitCompletesAfterInterruption kills init during wait-control-plane (its supervisor keeps the
// components running) and runs init again while the components are known not to be healthy: the
// second init must recognise the running supervisor of its root as its own, skip the port checks
// that those components' ports would fail, wait for health and finish the remaining phases; a
// third init is then a no-op.
//
// Why this is deterministic: init is killed at its first [wait-control-plane] line, which it
// prints only after the supervisor runs and before it has seen anything healthy, so no cluster
// object exists yet. Then etcd is stopped with SIGSTOP once it listens: its ports stay bound and
// nothing can become healthy (etcd answers no health check; the apiserver's /readyz needs etcd),
// whatever the machine's load. The second init therefore always finds its own supervisor with
// unhealthy components holding the ports — the case that used to fail with "port ... is in use".
// etcd continues only when the second init has reached wait-control-plane.
func TestInitCompletesAfterInterruption(t *testing.T) {
	const offset = 31000
	root := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), offset)
	t.Cleanup(func() { stopAndCheck(t, root) })
	killInitDuringWait(t, root, cfgFile)
	resume := freezeEtcd(t, root, 2379+offset)

	cmd := exec.Command(binary, "init", "--root-dir", root, "--config", cfgFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "[wait-control-plane]") {
			resume()
		}
	}
	resume()
	err = cmd.Wait()
	if err != nil {
		t.Fatalf("the second init failed (%v):\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"[init] The control plane of this root is running", "[preflight] Skipping the port checks", "[bootstrap-token]"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the second init's progress lacks %q:\n%s", want, stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "kubestrap join ") {
		t.Errorf("the second init printed no join command:\n%s", stdout.String())
	}
	if r := mustRun(t, "init", "--root-dir", root, "--config", cfgFile); !strings.Contains(r.stderr, "nothing to do") {
		t.Errorf("the third init is not a no-op:\n%s", r.stderr)
	}
}

// TestExplicitModeNotStartedFails: with an explicit --mode systemd or static-pod that kubestrap
// cannot drive (here: a root dir, which neither systemd nor a kubelet reads), init writes the
// files, prints the commands that start them and fails, its last line saying that the control
// plane was not started. Skipping wait-control-plane says nothing is expected to run: exit 0.
func TestExplicitModeNotStartedFails(t *testing.T) {
	cfgFile := writeConfig(t, t.TempDir(), 34700)
	for _, mode := range []string{"systemd", "static-pod"} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			r := run(t, "init", "--root-dir", root, "--config", cfgFile, "--mode", mode)
			if r.code == 0 {
				t.Fatalf("init exited 0 with nothing running:\n%s", r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "error: the control plane was not started: "+mode+" mode wrote its files under "+root) {
				t.Errorf("last line %q does not say the control plane was not started", last)
			}
			start := "systemctl link " + filepath.Join(root, "etc/systemd/system/etcd.service")
			if mode == "static-pod" {
				start = "systemctl link " + filepath.Join(root, "etc/systemd/system/kubelet.service")
			}
			if !strings.Contains(r.stderr, start) {
				t.Errorf("init did not print the command that starts the control plane (%q):\n%s", start, r.stderr)
			}
			if strings.Contains(r.stdout, "initialized successfully") {
				t.Errorf("init claims success:\n%s", r.stdout)
			}
			if left := processesUnder(root); len(left) > 0 {
				t.Errorf("processes under %s: %v", root, left)
			}
			if mode == "systemd" {
				// The units run a root-owned copy of the binary, which reset removes.
				installed, _ := filepath.Glob(filepath.Join(root, "var/lib/kubestrap/bin/*/kubestrap"))
				if len(installed) != 1 {
					t.Fatalf("installed binaries: %v, want one", installed)
				}
				if target, err := os.Readlink(filepath.Join(root, "var/lib/kubestrap/bin/etcd")); err != nil || target != installed[0] {
					t.Errorf("the etcd link points at %q (%v), want %s", target, err, installed[0])
				}
				mustRun(t, "reset", "--root-dir", root, "--force")
				if _, err := os.Lstat(filepath.Join(root, "var/lib/kubestrap")); err == nil {
					t.Errorf("reset left var/lib/kubestrap (the installed binary)")
				}
			}

			root = t.TempDir()
			mustRun(t, "init", "--root-dir", root, "--config", cfgFile, "--mode", mode, "--skip-phases", "wait-control-plane")
		})
	}
}
