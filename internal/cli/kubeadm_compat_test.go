package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/testfixture"
)

// The address, node name and version are all a kubeadm file needs filled in.
var (
	fillInit = []string{"advertiseAddress: 1.2.3.4", "advertiseAddress: 127.0.0.1", "  name: node\n", "  name: n1\n", "kubernetesVersion: 1.37.0", "kubernetesVersion: v1.37.2"}
	fillJoin = []string{"apiServerEndpoint: kube-apiserver:6443", "apiServerEndpoint: 127.0.0.1:6443", "  name: vm\n", "  name: worker-1\n"}
)

func assertEmpty(t *testing.T, root, what string) {
	t.Helper()
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		t.Errorf("%s wrote under the root dir: %v", what, entries)
	}
}

// Each file kubeadm prints passes config validate and loads for its command.
func TestKubeadmDefaultFilesLoad(t *testing.T) {
	t.Parallel()
	initFile := testfixture.KubeadmFile(t, "init-defaults.yaml", fillInit...)
	joinFile := testfixture.KubeadmFile(t, "join-defaults.yaml", fillJoin...)
	resetFile := testfixture.KubeadmFile(t, "reset-defaults.yaml")
	for _, f := range []string{initFile, joinFile, resetFile} {
		out, stderr, code := runCLI(t, 0, "config", "validate", "--config", f)
		if code != 0 || !strings.HasPrefix(out, "ok: ") {
			t.Errorf("config validate %s: exit %d\n%s%s", filepath.Base(f), code, out, stderr)
		}
	}

	// The component configs in the file are read, not passed over: a typo in either is refused
	// by config validate and by init, naming the field.
	typos := testfixture.KubeadmFile(t, "init-defaults.yaml", append(fillInit, "cgroupDriver: systemd", "cgroupDrivr: systemd", "mode: iptables", "modee: iptables")...)
	for _, args := range [][]string{{"config", "validate"}, {"init", "--dry-run", "--mode", "local"}} {
		root := t.TempDir()
		_, stderr, code := runCLI(t, 0, append(args, "--config", typos, "--root-dir", root)...)
		if code == 0 || !strings.Contains(stderr, `document 3 (KubeletConfiguration): unknown field "cgroupDrivr"`) ||
			!strings.Contains(stderr, `document 4 (KubeProxyConfiguration): unknown field "modee"`) {
			t.Errorf("%v with typos in the component configs: exit %d\n%s", args, code, stderr)
		}
		assertEmpty(t, root, strings.Join(args, " "))
	}

	// init: the whole configuration path, in a dry run (preflight skipped: the machine's ports
	// are shared with other tests).
	root := t.TempDir()
	out, stderr, code := runCLI(t, 0, "init", "--config", initFile, "--root-dir", root, "--mode", "local", "--dry-run", "--skip-phases", "preflight")
	if code != 0 || !strings.Contains(out, "initialized successfully") {
		t.Errorf("init --config %s --dry-run: exit %d\n%s%s", initFile, code, out, stderr)
	}
	// kubeadm's KubeletConfiguration is what the kubelet-config ConfigMap would hold.
	if !strings.Contains(stderr, "kube-system/kubelet-config with:\n") || !strings.Contains(stderr, "cgroupDriver: systemd\n") {
		t.Errorf("init --dry-run did not show the kubelet-config ConfigMap:\n%s", stderr)
	}
	assertEmpty(t, root, "init --dry-run")

	// join: its configuration loading (discovery needs a cluster).
	root = t.TempDir()
	var errOut strings.Builder
	g := &globalOptions{ConfigFile: joinFile, RootDir: root, UID: 0, Out: &strings.Builder{}, Err: &errOut}
	if _, err := newJoin(g, &joinOptions{}, nil); err != nil {
		t.Errorf("join --config %s: %v", joinFile, err)
	}
	assertEmpty(t, root, "loading join's configuration")

	// reset: a full run on a root with nothing to reset.
	root = t.TempDir()
	if out, stderr, code := runCLI(t, 0, "reset", "--config", resetFile, "--root-dir", root, "--force"); code != 0 {
		t.Errorf("reset --config %s: exit %d\n%s%s", resetFile, code, out, stderr)
	}
}

// skipPhases and --skip-phases take kubeadm's phase names: kubestrap's phases are skipped, kubeadm
// phases without a counterpart are noted, unknown names are refused by the command and by config
// validate alike, with the valid names.
func TestSkipPhasesKubeadmNames(t *testing.T) {
	t.Parallel()
	dry := func(args ...string) []string {
		return append(args, "--root-dir", t.TempDir(), "--mode", "local", "--dry-run", "--apiserver-advertise-address", "127.0.0.1", "--node-name", "n1")
	}
	out, stderr, code := runCLI(t, 0, dry("init", "--skip-phases", "preflight,addon/coredns,kubelet-finalize,show-join-command")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"[init] Skipping phase kubelet-finalize: kubestrap has no such phase yet",
		"name: kube-proxy", // addon/kube-proxy still runs
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "name: coredns") {
		t.Errorf("addon/coredns ran although skipped:\n%s", stderr)
	}
	if strings.Contains(out, "initialized successfully") {
		t.Errorf("show-join-command ran although skipped:\n%s", out)
	}
	if out, _, _ := runCLI(t, 0, dry("init", "--skip-phases", "preflight")...); !strings.Contains(out, "initialized successfully") {
		t.Errorf("show-join-command does not run when not skipped, so the check above proves nothing:\n%s", out)
	}

	// The same names in the InitConfiguration's skipPhases.
	withSkip := func(list string) string {
		return testfixture.KubeadmFile(t, "init-defaults.yaml", append(fillInit, "timeouts:\n  controlPlaneComponentHealthCheck", "skipPhases: ["+list+"]\ntimeouts:\n  controlPlaneComponentHealthCheck")...)
	}
	good := withSkip("preflight, addon/kube-proxy, kubelet-finalize/enable-client-cert-rotation")
	if _, stderr, code := runCLI(t, 0, "init", "--config", good, "--root-dir", t.TempDir(), "--mode", "local", "--dry-run"); code != 0 ||
		!strings.Contains(stderr, "[init] Skipping phase kubelet-finalize/enable-client-cert-rotation: kubestrap has no such phase yet") ||
		strings.Contains(stderr, "name: kube-proxy") || !strings.Contains(stderr, "name: coredns") {
		t.Errorf("skipPhases from the file: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := runCLI(t, 0, "config", "validate", "--config", good); code != 0 {
		t.Errorf("config validate refused kubeadm phase names: %s", stderr)
	}

	bad := withSkip("preflight, addons")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"init", "--config", bad}, []string{`unknown phase "addons" to skip; valid phases for init are: preflight, images, certs, `, "addon/coredns", "show-join-command"}},
		{[]string{"init", "--skip-phases", "addons", "--apiserver-advertise-address", "127.0.0.1", "--node-name", "n1"}, []string{`unknown phase "addons" to skip; valid phases for init are: preflight, images, certs, `, "addon/coredns"}},
		{[]string{"config", "validate", "--config", bad}, []string{`skipPhases[1]: Unsupported value: "addons": supported values: "preflight", "images", "certs", `, `"addon/coredns"`}},
		{[]string{"join", "127.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-unsafe-skip-ca-verification", "--node-name", "w1", "--skip-phases", "cleanup-node"},
			[]string{`unknown phase "cleanup-node" to skip; valid phases for join are: preflight, discovery, images, control-plane-prepare, `, "etcd-join", "join-addresses, kubelet-wait-bootstrap, check-etcd"}},
		{[]string{"config", "validate", "--config", testfixture.KubeadmFile(t, "join-defaults.yaml", append(fillJoin, "timeouts:", "skipPhases: [cleanup-node]\ntimeouts:")...)},
			[]string{`skipPhases[0]: Unsupported value: "cleanup-node": supported values: "preflight", "discovery", "images", "control-plane-prepare", `, `"etcd-join"`, `"kubelet-wait-bootstrap", "check-etcd"`}},
		{[]string{"reset", "--force", "--skip-phases", "addon"}, []string{`unknown phase "addon" to skip; valid phases for reset are: preflight, remove-etcd-member, stop, cleanup, pre-flight, cleanup-node, cleanupnode`}},
		{[]string{"config", "validate", "--config", testfixture.KubeadmFile(t, "reset-defaults.yaml", "timeouts:", "skipPhases: [addon]\ntimeouts:")},
			[]string{`skipPhases[0]: Unsupported value: "addon": supported values: "preflight", "remove-etcd-member", "stop", "cleanup"`}},
	} {
		root := t.TempDir()
		_, stderr, code := runCLI(t, 0, append(tc.args, "--root-dir", root)...)
		if code == 0 {
			t.Errorf("%v: accepted", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
		assertEmpty(t, root, strings.Join(tc.args, " "))
	}

	// join and reset: kubeadm's names of their phases skip kubestrap's, the rest are noted.
	root := t.TempDir()
	_, stderr, code = runCLI(t, 0, "join", "127.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-unsafe-skip-ca-verification", "--node-name", "w1", "--root-dir", root,
		"--skip-phases", "preflight,discovery,kubelet-start,kubelet-wait-bootstrap,etcd-join,control-plane-join/mark-control-plane,check-etcd")
	if code != 0 || !strings.Contains(stderr, "[join] Skipping phase check-etcd: kubestrap has no such phase yet") {
		t.Errorf("join with every phase skipped: exit %d\n%s", code, stderr)
	}
	assertEmpty(t, root, "join with every phase skipped")
	root = t.TempDir()
	if _, stderr, code := runCLI(t, 0, "reset", "--force", "--root-dir", root, "--skip-phases", "preflight,remove-etcd-member,cleanup-node"); code != 0 {
		t.Errorf("reset with kubeadm's phase names: exit %d\n%s", code, stderr)
	}
}

// A control-plane join without the certificate key (flags or file) is refused before anything is
// written, saying where the key comes from.
func TestControlPlaneJoinWithoutCertificateKeyRefused(t *testing.T) {
	t.Parallel()
	join := []string{"join", "127.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-unsafe-skip-ca-verification", "--node-name", "w1"}
	cpFile := testfixture.KubeadmFile(t, "join-defaults.yaml", append(fillJoin, "caCertPath:", "controlPlane: {}\ncaCertPath:")...)
	joinMsg := "controlPlane.certificateKey: Required value: " + config.NoCertificateKey
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(join, "--control-plane"), joinMsg},
		{append(join, "--control-plane", "--apiserver-advertise-address", "127.0.0.1"), joinMsg},
		{append(join, "--control-plane", "--skip-phases", "preflight"), joinMsg},
		{[]string{"join", "phase", "kubelet-start", "127.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-unsafe-skip-ca-verification", "--control-plane"}, joinMsg},
		{[]string{"join", "--config", cpFile}, joinMsg},
		{[]string{"config", "validate", "--config", cpFile}, joinMsg},
	} {
		root := t.TempDir()
		_, stderr, code := runCLI(t, 0, append(tc.args, "--root-dir", root)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to contain %q", tc.args, code, stderr, tc.want)
		}
		if strings.Contains(stderr, "Usage:") {
			t.Errorf("%v: a known flag is not a usage error:\n%s", tc.args, stderr)
		}
		assertEmpty(t, root, strings.Join(tc.args, " "))
	}
}

// In static-pod mode the control-plane node's own kubelet starts from the same merged
// KubeletConfiguration: the file's fields over kubestrap's defaults.
func TestStaticPodKubeletConfigHasUserFields(t *testing.T) {
	t.Parallel()
	cfg := testfixture.KubeadmFile(t, "init-defaults.yaml", append(fillInit, "cgroupDriver: systemd", "cgroupDriver: cgroupfs\nmaxPods: 42")...)
	root := t.TempDir()
	_, stderr, code := runCLI(t, 0, "init", "phase", "kubelet-start", "--mode", "static-pod", "--config", cfg, "--root-dir", root)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(root, "var/lib/kubelet/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"maxPods: 42\n", "cgroupDriver: cgroupfs\n", "healthzBindAddress: 127.0.0.1\n", "staticPodPath: " + filepath.Join(root, "etc/kubernetes/manifests") + "\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, b)
		}
	}
}
