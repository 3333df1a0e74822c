package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nobody is the uid/gid the unprivileged test runs as when the suite itself runs as root.
const nobody = 65534

// runAs runs kubestrap as an unprivileged user when the test runs as root.
func runAs(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestInitAsUserStopAndResume runs the quick start as an ordinary user: init under a root dir, stop,
// then init again, which reuses the PKI and etcd data and brings the same cluster back.
func TestInitAsUserStopAndResume(t *testing.T) {
	// Not t.TempDir(): its parent directory is private to the test's user.
	base, err := os.MkdirTemp("", "kubestrap-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if os.Geteuid() == 0 {
		// The binary's directory and the root dir must be usable by the unprivileged user.
		if err := os.Chmod(filepath.Dir(binary), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(base, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(base, "demo")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgFile := writeConfig(t, base, 29000)
	if os.Geteuid() == 0 {
		for _, p := range []string{root, cfgFile} {
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		runAs(t, "stop", "--root-dir", root)
		if left := processesUnder(root); len(left) > 0 {
			t.Errorf("processes left: %v", left)
			stopAndCheck(t, root)
		}
	})

	if r := runAs(t, "init", "--root-dir", root, "--config", cfgFile); r.code != 0 {
		t.Fatalf("init as an ordinary user: exit %d\n%s", r.code, r.stderr)
	}
	caBefore, err2 := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"))
	if err2 != nil {
		t.Fatal(err2)
	}
	if r := runAs(t, "status", "--root-dir", root); r.code != 0 {
		t.Errorf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runAs(t, "stop", "--root-dir", root); r.code != 0 {
		t.Fatalf("stop: exit %d\n%s", r.code, r.stderr)
	}
	if left := processesUnder(root); len(left) > 0 {
		t.Fatalf("processes left after stop: %v", left)
	}
	if r := runAs(t, "status", "--root-dir", root); r.code == 0 {
		t.Errorf("status after stop exits 0:\n%s", r.stdout)
	}

	r := runAs(t, "init", "--root-dir", root, "--config", cfgFile)
	if r.code != 0 {
		t.Fatalf("init after stop: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "Using existing") {
		t.Errorf("second init did not reuse the PKI:\n%s", r.stderr)
	}
	caAfter, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"))
	if !bytes.Equal(caBefore, caAfter) {
		t.Errorf("the CA changed across stop and init")
	}
	out, err := exec.Command("kubectl", "--kubeconfig", filepath.Join(root, "etc/kubernetes/admin.conf"), "get", "configmap", "-n", "kube-system", "kubeadm-config", "-o", "name").CombinedOutput()
	if _, lookErr := exec.LookPath("kubectl"); lookErr == nil && (err != nil || !strings.Contains(string(out), "kubeadm-config")) {
		t.Errorf("the resumed cluster lost its state: %v %s", err, out)
	}
}
