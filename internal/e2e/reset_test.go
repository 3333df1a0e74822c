package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// resetOffset moves the reset tests' control planes to their own ports.
const resetOffset = 24000

// TestReset walks reset's promises on a real local-mode control plane: a dry run changes nothing,
// reset stops every process of the root and removes every file kubestrap wrote but not the
// operator's, a second reset has nothing to do, init works again on the same root with a fresh CA,
// and a joined worker's root is emptied too.
func TestReset(t *testing.T) {
	requireCommand(t, "reset")
	root := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), resetOffset)
	t.Cleanup(func() { cleanupRoot(t, root) })

	mustRun(t, "init", "--root-dir", root, "--config", cfgFile)
	caPath := filepath.Join(root, "etc/kubernetes/pki/ca.crt")
	ca1, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(root, "etc/kubernetes/operator-notes.txt")
	if err := os.WriteFile(foreign, []byte("not kubestrap's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	leftAfterReset := []string{"etc", "etc/kubernetes", "etc/kubernetes/operator-notes.txt"}

	t.Run("dry run changes nothing", func(t *testing.T) {
		pids := componentPids(t, root)
		before := listing(t, root)
		r := mustRun(t, "reset", "--root-dir", root, "--dry-run")
		if after := listing(t, root); !slices.Equal(before, after) {
			t.Errorf("the dry run changed the root:\nbefore %v\nafter  %v", before, after)
		}
		for name, pid := range pids {
			if err := syscall.Kill(pid, 0); err != nil {
				t.Errorf("%s (pid %d) is not running after the dry run: %v", name, pid, err)
			}
			if !strings.Contains(r.stderr, "[dryrun] Would stop process "+strconv.Itoa(pid)+" ") {
				t.Errorf("the dry run does not list %s (pid %d):\n%s", name, pid, r.stderr)
			}
		}
		for _, f := range []string{caPath, filepath.Join(root, "var/lib/etcd/member/snap/db"), filepath.Join(root, "var/lib/kubestrap/supervisor.json")} {
			if !strings.Contains(r.stderr, "[dryrun] Would remove "+f+"\n") {
				t.Errorf("the dry run does not list %s:\n%s", f, r.stderr)
			}
		}
	})

	start := time.Now()
	r := mustRun(t, "reset", "--root-dir", root, "--force")
	took := time.Since(start)
	t.Logf("reset --force of a running local-mode control plane took %s", took.Round(time.Millisecond))
	assertResetClean(t, root, leftAfterReset)
	if !strings.Contains(r.stderr, "Kept "+foreign+": not created by kubestrap") {
		t.Errorf("reset does not report the operator's file as kept:\n%s", r.stderr)
	}
	for _, s := range []string{"etc/cni/net.d", "iptables", "$HOME/.kube/config"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("the closing notice does not mention %s:\n%s", s, r.stdout)
		}
	}

	t.Run("second reset has nothing to do", func(t *testing.T) {
		r := mustRun(t, "reset", "--root-dir", root, "--force")
		if !strings.Contains(r.stderr, "Nothing to do") {
			t.Errorf("second reset:\n%s", r.stderr)
		}
		assertResetClean(t, root, leftAfterReset)
	})

	t.Run("init again with a fresh CA, join, reset the worker", func(t *testing.T) {
		mustRun(t, "init", "--root-dir", root, "--config", cfgFile)
		ca2, err := os.ReadFile(caPath)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(ca1, ca2) {
			t.Error("init after reset reused the old CA")
		}
		if run(t, "join", "--help").code == 0 && run(t, "token", "--help").code == 0 {
			resetWorker(t, root)
		} else {
			t.Log("join or token is not in this binary: worker reset not tested")
		}
		mustRun(t, "reset", "--root-dir", root, "--force")
		assertResetClean(t, root, leftAfterReset)
	})
}

// resetWorker joins a worker root to the control plane of ctrl and resets it.
func resetWorker(t *testing.T, ctrl string) {
	t.Helper()
	var line string
	// The controller-manager signs cluster-info for a new token a few seconds after init.
	deadline := time.Now().Add(time.Minute)
	worker := t.TempDir()
	t.Cleanup(func() { cleanupRoot(t, worker) })
	for {
		r := mustRun(t, "token", "create", "--root-dir", ctrl, "--print-join-command")
		line = strings.TrimSpace(r.stdout)
		args := append(strings.Fields(line)[1:], "--root-dir", worker, "--node-name", "reset-worker")
		if j := run(t, args...); j.code == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("join: exit %d\n%s", j.code, j.stderr)
		}
		time.Sleep(time.Second)
	}
	if _, err := os.Stat(filepath.Join(worker, "etc/kubernetes/kubelet.conf")); err != nil {
		t.Fatalf("join wrote no kubelet.conf: %v", err)
	}
	r := mustRun(t, "reset", "--root-dir", worker, "--force")
	assertResetClean(t, worker, nil)
	if r = mustRun(t, "reset", "--root-dir", worker, "--force"); !strings.Contains(r.stderr, "Nothing to do") {
		t.Errorf("second reset of the worker:\n%s", r.stderr)
	}
}

// TestResetAfterKilledInit: an init killed with SIGKILL while it waits for the control plane leaves
// a running supervisor and half a node; reset removes all of it.
func TestResetAfterKilledInit(t *testing.T) {
	requireCommand(t, "reset")
	root := t.TempDir()
	cfgFile := writeConfig(t, t.TempDir(), resetOffset)
	t.Cleanup(func() { cleanupRoot(t, root) })

	killInitDuringWait(t, root, cfgFile)
	if left := processesUnder(root); len(left) == 0 {
		t.Log("no process of the root survived the killed init")
	} else {
		t.Logf("the killed init left %d processes of the root", len(left))
	}

	r := mustRun(t, "reset", "--root-dir", root, "--force")
	assertResetClean(t, root, nil)
	if r = mustRun(t, "reset", "--root-dir", root, "--force"); !strings.Contains(r.stderr, "Nothing to do") {
		t.Errorf("second reset:\n%s", r.stderr)
	}
}

func requireCommand(t *testing.T, name string) {
	t.Helper()
	if run(t, name, "--help").code != 0 {
		t.Skipf("this kubestrap has no %s command", name)
	}
}

// assertResetClean checks that no process refers to root and that root holds exactly want.
func assertResetClean(t *testing.T, root string, want []string) {
	t.Helper()
	if left := processesUnder(root); len(left) > 0 {
		var cmds []string
		for _, pid := range left {
			b, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			cmds = append(cmds, pid+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
		t.Errorf("processes of %s left after reset:\n  %s", root, strings.Join(cmds, "\n  "))
	}
	if got := listing(t, root); !slices.Equal(got, want) {
		t.Errorf("root %s holds after reset:\n  %s\nwant:\n  %s", root, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// listing is every path under root, relative, sorted, with the type of each.
func listing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// componentPids reads the pid files of the control plane under root.
func componentPids(t *testing.T, root string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, c := range []string{"supervisor", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubestrap-csr-approver"} {
		pids[c] = readPid(t, root, c)
	}
	return pids
}

// cleanupRoot makes sure a failed test leaves no process behind.
func cleanupRoot(t *testing.T, root string) {
	run(t, "reset", "--root-dir", root, "--force")
	if left := processesUnder(root); len(left) > 0 {
		for _, p := range left {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		t.Errorf("processes of %s killed after the test: %v", root, left)
	}
}
