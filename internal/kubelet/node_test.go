package kubelet

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

const goldenDir = "../../testdata/kubelet"

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	golden.Check(t, path, []byte(got))
}

// testConfig is the shared defaulted configuration (configtest) for this package's node.
func testConfig() *config.Config { return configtest.Init("192.168.0.10", "node1") }

var controlPlaneTaint = corev1.Taint{Key: config.ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule}

var flagCases = []struct {
	name  string
	flags NodeFlags
}{
	// init on a host named node1: no --hostname-override.
	{"control-plane", NodeFlags{NodeName: "node1", Hostname: "node1", CRISocket: "unix:///var/run/containerd/containerd.sock", Taints: []corev1.Taint{controlPlaneTaint}}},
	// join under another name, with taints and extra args, one replacing a default.
	{"worker", NodeFlags{
		NodeName:  "worker-a",
		Hostname:  "ip-10-0-0-7",
		CRISocket: "unix:///var/run/crio/crio.sock",
		Taints: []corev1.Taint{
			{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
			{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule},
		},
		ExtraArgs: []config.Arg{
			{Name: "node-ip", Value: "10.0.0.7"},
			{Name: "container-runtime-endpoint", Value: "unix:///run/crio/crio.sock"},
			{Name: "node-labels", Value: "pool=gpu"},
		},
	}},
}

func TestGolden(t *testing.T) {
	t.Parallel()
	kc, err := Configuration(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(ForRoot(kc, paths.MustUnder("/")))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join(goldenDir, "config.yaml"), string(b))
	for _, tc := range flagCases {
		env, err := FlagsEnv(tc.flags)
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, filepath.Join(goldenDir, tc.name, "kubeadm-flags.env"), string(env))
	}
}

func TestFlagsEnvHostname(t *testing.T) {
	t.Parallel()
	env, err := FlagsEnv(NodeFlags{NodeName: "node1", Hostname: "Node1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(env) != "KUBELET_KUBEADM_ARGS=\"\"\n" {
		t.Errorf("a hostname differing only in case gives %q", env)
	}
	if _, err := FlagsEnv(NodeFlags{Hostname: "h", ExtraArgs: []config.Arg{{Name: "node-labels", Value: "a=b c=d"}}}); err == nil {
		t.Error("a value with whitespace was accepted")
	}
}

func TestForRootIdempotent(t *testing.T) {
	t.Parallel()
	kc, err := Configuration(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := paths.MustUnder("/srv/node1")
	once := ForRoot(kc, p)
	twice := ForRoot(once, p)
	if once.StaticPodPath != "/srv/node1/etc/kubernetes/manifests" || twice.StaticPodPath != once.StaticPodPath ||
		twice.Authentication.X509.ClientCAFile != "/srv/node1/etc/kubernetes/pki/ca.crt" {
		t.Errorf("ForRoot: once %s, twice %s, CA %s", once.StaticPodPath, twice.StaticPodPath, twice.Authentication.X509.ClientCAFile)
	}
	if kc.StaticPodPath != "/etc/kubernetes/manifests" {
		t.Error("ForRoot modified its argument")
	}
}

func TestWriteNodeFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := paths.MustUnder(root)
	kc, err := Configuration(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	flags := flagCases[1].flags
	var log bytes.Buffer
	o := Options{Log: &log, Kubelet: "/opt/bin/kubelet", FS: rootOwned}
	if err := WriteNodeFiles(p, kc, flags, o); err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := Marshal(ForRoot(kc, p))
	wantEnv, _ := FlagsEnv(flags)
	wantUnit, wantDropIn, _ := systemd.KubeletUnits(p, "/opt/bin/kubelet")
	for path, want := range map[string][]byte{
		p.KubeletConfig():            wantCfg,
		p.KubeletFlagsEnv():          wantEnv,
		systemd.KubeletUnitPath(p):   wantUnit,
		systemd.KubeletDropInPath(p): wantDropIn,
	} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n%s\nwant\n%s", path, got, want)
		}
		if fi, _ := os.Stat(path); fi.Mode() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", path, fi.Mode())
		}
	}
	if fi, _ := os.Stat(p.KubeletDir()); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", p.KubeletDir(), fi.Mode())
	}
	// Every path the kubelet is pointed at is under the root.
	for _, s := range []string{string(wantCfg), string(wantDropIn)} {
		for _, line := range strings.Fields(s) {
			if i := strings.Index(line, "/etc/kubernetes"); i >= 0 && !strings.Contains(line, root+"/etc/kubernetes") {
				t.Errorf("path outside the root: %s", line)
			}
		}
	}
	for _, want := range []string{
		`[kubelet-start] Writing kubelet environment file with flags to ` + p.KubeletFlagsEnv(),
		`[kubelet-start] Writing kubelet configuration to ` + p.KubeletConfig(),
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}

	log.Reset()
	if err := WriteNodeFiles(p, kc, flags, o); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "Using existing"); n != 4 {
		t.Errorf("second run kept %d files, want 4:\n%s", n, log.String())
	}
}

func TestWriteNodeFilesDryRun(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := paths.MustUnder(root)
	kc, err := Configuration(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := WriteNodeFiles(p, kc, flagCases[0].flags, Options{Files: fsutil.NewDryRun(&log), Log: &log, Kubelet: "/usr/bin/kubelet", FS: rootOwned}); err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := Marshal(ForRoot(kc, p))
	wantEnv, _ := FlagsEnv(flagCases[0].flags)
	for _, want := range [][]byte{wantCfg, wantEnv} {
		if !strings.Contains(log.String(), string(want)) {
			t.Errorf("dry run does not print:\n%s", want)
		}
	}
	if n := strings.Count(log.String(), "[dryrun] Would write file"); n != 4 {
		t.Errorf("dry run announces %d files, want 4", n)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("dry run wrote under the root: %v", entries)
	}
}

func TestFlagsFromEnvReadsFlagsEnv(t *testing.T) {
	t.Parallel()
	data, err := FlagsEnv(NodeFlags{CRISocket: "unix:///var/run/crio/crio.sock", Hostname: "node-1", NodeName: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := FlagsFromEnv(data)["container-runtime-endpoint"]; got != "unix:///var/run/crio/crio.sock" {
		t.Errorf("endpoint read back from %q: %q", data, got)
	}
	// Values with the characters FlagsEnv escapes, the last one too, read back unchanged.
	extra := []config.Arg{{Name: "a", Value: `x"y`}, {Name: "b", Value: `c:\d`}, {Name: "z", Value: `q'"`}}
	data, err = FlagsEnv(NodeFlags{ExtraArgs: extra, Hostname: "node-1", NodeName: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	got := FlagsFromEnv(data)
	for _, a := range extra {
		if got[a.Name] != a.Value {
			t.Errorf("--%s read back from %q as %q, want %q", a.Name, data, got[a.Name], a.Value)
		}
	}
	// kubeadm's own file.
	kubeadm := []byte("KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n")
	want := map[string]string{"container-runtime-endpoint": "unix:///var/run/containerd/containerd.sock", "pod-infra-container-image": "registry.k8s.io/pause:3.10"}
	if got := FlagsFromEnv(kubeadm); !maps.Equal(got, want) {
		t.Errorf("FlagsFromEnv(kubeadm's) = %v, want %v", got, want)
	}
	if got := FlagsFromEnv(nil); len(got) != 0 {
		t.Errorf("FlagsFromEnv(nil) = %v", got)
	}
}
