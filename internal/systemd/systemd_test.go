package systemd

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/staticpod"
)

const goldenDir = "../../testdata/systemd"

func baseConfig() *config.Config { return configtest.Init("192.168.0.10", "node1") }

// customConfig has extraArgs (one with characters systemd would otherwise interpret),
// extraEnvs and an external etcd.
func customConfig() *config.Config {
	cfg := baseConfig()
	cfg.Cluster.Etcd = config.Etcd{External: &config.ExternalEtcd{
		Endpoints: []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"},
		CAFile:    "/etc/etcd/pki/ca.crt",
		CertFile:  "/etc/etcd/client/apiserver.crt",
		KeyFile:   "/etc/etcd/client/apiserver.key",
	}}
	cfg.Cluster.APIServer.ExtraArgs = []config.Arg{
		{Name: "oidc-issuer-url", Value: "https://issuer.example.com"},
		{Name: "oidc-username-prefix", Value: "oidc:$USER %h"},
		{Name: "audit-log-maxage", Value: "7"},
	}
	cfg.Cluster.APIServer.ExtraEnvs = []config.EnvVar{
		{EnvVar: corev1.EnvVar{Name: "GOMAXPROCS", Value: "2"}},
		{EnvVar: corev1.EnvVar{Name: "GODEBUG", Value: `x509sha1=1,note="100%"`}},
	}
	cfg.Cluster.ControllerManager.ExtraArgs = []config.Arg{{Name: "bind-address", Value: "0.0.0.0"}}
	cfg.Cluster.Scheduler.ExtraArgs = []config.Arg{{Name: "config", Value: "/etc/kubernetes/scheduler-config.yaml"}}
	return cfg
}

var goldenCases = []struct {
	name    string
	cfg     func() *config.Config
	environ []string
}{
	{"default", baseConfig, nil},
	{"custom", customConfig, []string{"HOME=/root", "HTTPS_PROXY=http://proxy.example.com:3128"}},
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	golden.Check(t, path, []byte(got))
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		cfg, p := tc.cfg(), paths.MustUnder("/")
		for _, c := range components.ControlPlane(cfg, p) {
			b, err := render(cfg, p, c, tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(goldenDir, tc.name, UnitName(c.Name)), string(b))
		}
	}
	u, d, err := KubeletUnits(paths.MustUnder("/"), "/usr/bin/kubelet")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join(goldenDir, "kubelet", "kubelet.service"), string(u))
	checkGolden(t, filepath.Join(goldenDir, "kubelet", "10-kubeadm.conf"), string(d))
}

// execWords splits an ExecStart= value as systemd does for what execArg produces: line
// continuations, double quotes with C escapes, then "%%" and "$$".
func execWords(t *testing.T, v string) []string {
	t.Helper()
	v = strings.ReplaceAll(v, "\\\n", " ")
	var words []string
	unesc := strings.NewReplacer("%%", "%", "$$", "$")
	for i := 0; i < len(v); {
		if v[i] == ' ' || v[i] == '\t' || v[i] == '\n' {
			i++
			continue
		}
		var w strings.Builder
		quoted := v[i] == '"'
		if quoted {
			i++
		}
		for ; i < len(v); i++ {
			ch := v[i]
			if quoted && ch == '"' {
				i++
				break
			}
			if !quoted && (ch == ' ' || ch == '\t' || ch == '\n') {
				break
			}
			if ch == '\\' && i+1 < len(v) {
				i++
				switch v[i] {
				case 'n':
					w.WriteByte('\n')
				case 't':
					w.WriteByte('\t')
				default:
					w.WriteByte(v[i])
				}
				continue
			}
			w.WriteByte(ch)
		}
		words = append(words, unesc.Replace(w.String()))
	}
	return words
}

func parseUnit(t *testing.T, b []byte) []*unit.UnitOption {
	t.Helper()
	opts, err := unit.Deserialize(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("unit does not parse: %v\n%s", err, b)
	}
	return opts
}

func option(opts []*unit.UnitOption, section, name string) []string {
	var out []string
	for _, o := range opts {
		if o.Section == section && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}

// TestSameFlagsAsManifest is the design's rule: the unit's ExecStart flags, the static pod's
// command after argv[0] and the components' argument list are the same, in the same order.
func TestSameFlagsAsManifest(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		for _, root := range []string{"/", "/tmp/other root"} {
			cfg, p := tc.cfg(), paths.MustUnder(root)
			for _, c := range components.ControlPlane(cfg, p) {
				b, err := render(cfg, p, c, tc.environ)
				if err != nil {
					t.Fatal(err)
				}
				execs := option(parseUnit(t, b), "Service", "ExecStart")
				if len(execs) != 1 {
					t.Fatalf("%s: %d ExecStart lines", c.Name, len(execs))
				}
				words := execWords(t, execs[0])
				if words[0] != p.ComponentBinary(c.Name) {
					t.Errorf("%s: runs %q, want the component symlink %s", c.Name, words[0], p.ComponentBinary(c.Name))
				}
				pod, err := staticpod.Pod(cfg, p, c)
				if err != nil {
					t.Fatal(err)
				}
				manifest := pod.Spec.Containers[0].Command[1:]
				if !slices.Equal(words[1:], c.Args) || !slices.Equal(manifest, c.Args) {
					t.Errorf("%s (root %q): flags differ\nunit:     %q\nmanifest: %q\nargs:     %q", c.Name, root, words[1:], manifest, c.Args)
				}
			}
		}
	}
}

func TestOrderingAndService(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  func() *config.Config
		name string
		want map[string]string // "Section.Name" -> value
	}{
		{baseConfig, components.EtcdName, map[string]string{"Service.Type": "notify", "Unit.After": "network-online.target", "Unit.Wants": "network-online.target"}},
		{baseConfig, components.APIServerName, map[string]string{"Service.Type": "exec", "Unit.After": "network-online.target etcd.service", "Unit.Requires": "etcd.service"}},
		{customConfig, components.APIServerName, map[string]string{"Unit.After": "network-online.target", "Unit.Requires": ""}},
		{baseConfig, components.ControllerManagerName, map[string]string{"Unit.After": "network-online.target kube-apiserver.service", "Unit.Wants": "network-online.target kube-apiserver.service", "Unit.Requires": ""}},
		{baseConfig, components.SchedulerName, map[string]string{"Unit.After": "network-online.target kube-apiserver.service", "Unit.Wants": "network-online.target kube-apiserver.service"}},
	} {
		cfg, p := tc.cfg(), paths.MustUnder("/")
		var c components.Component
		for _, x := range components.ControlPlane(cfg, p) {
			if x.Name == tc.name {
				c = x
			}
		}
		b, err := render(cfg, p, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		opts := parseUnit(t, b)
		common := map[string]string{
			"Service.Restart": "on-failure", "Service.RestartSec": "5", "Service.LimitNOFILE": "1048576",
			"Service.KillMode": "mixed", "Install.WantedBy": "multi-user.target",
		}
		for k, v := range tc.want {
			common[k] = v
		}
		for k, want := range common {
			sec, name, _ := strings.Cut(k, ".")
			got := strings.Join(option(opts, sec, name), " ")
			if got != want {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got, want)
			}
		}
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	cfg, p := customConfig(), paths.MustUnder("/")
	b, err := render(cfg, p, components.APIServer(cfg, p), []string{"HTTPS_PROXY=http://proxy:3128"})
	if err != nil {
		t.Fatal(err)
	}
	envs := option(parseUnit(t, b), "Service", "Environment")
	var got []string
	for _, e := range envs {
		got = append(got, execWords(t, e)...)
	}
	want := []string{`GODEBUG=x509sha1=1,note="100%"`, "GOMAXPROCS=2", "HTTPS_PROXY=http://proxy:3128"}
	if !slices.Equal(got, want) {
		t.Errorf("environment = %q, want %q", got, want)
	}

	cfg.Cluster.Scheduler.ExtraEnvs = []config.EnvVar{{EnvVar: corev1.EnvVar{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}}
	if _, err := render(cfg, p, components.Scheduler(cfg, p), nil); err == nil || !strings.Contains(err.Error(), `"NODE" uses valueFrom`) {
		t.Errorf("valueFrom extraEnv: err = %v", err)
	}
}

func TestExecArgEscaping(t *testing.T) {
	t.Parallel()
	in := []string{"/bin/x", "--a=plain", "--b=with space", `--c="quoted"`, `--d=back\slash`, "--e=100%", "--f=$HOME", ";", "", "--g=tab\tnew\nline", "--h=*,x"}
	var line []string
	for _, s := range in {
		line = append(line, execArg(s))
	}
	if got := execWords(t, strings.Join(line, " \\\n    ")); !slices.Equal(got, in) {
		t.Errorf("round trip:\n got %q\nwant %q", got, in)
	}
	if execArg("--controllers=*,bootstrapsigner,tokencleaner") != "--controllers=*,bootstrapsigner,tokencleaner" {
		t.Error("a plain flag got quoted")
	}
}

func writeAll(t *testing.T, cfg *config.Config, p paths.Paths, o Options) []string {
	t.Helper()
	var files []string
	for _, c := range components.ControlPlane(cfg, p) {
		if err := WriteUnit(cfg, p, c, o); err != nil {
			t.Fatal(err)
		}
		files = append(files, p.SystemdUnit(UnitName(c.Name)))
	}
	return files
}

func testExecutable(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// rootOwned plays a file system where everything is owned by root, so that the install checks
// pass without running the tests as root.
var rootOwned = InstallFS{Owner: func(fs.FileInfo) (uint32, bool) { return 0, true }}

func TestWriteUnit(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfg, p := baseConfig(), paths.MustUnder(root)
	src := testExecutable(t)
	exe := p.InstalledBinary(sha256File(t, src))
	var log bytes.Buffer
	files := writeAll(t, cfg, p, Options{Log: &log, Executable: src, FS: rootOwned})
	for i, c := range components.ControlPlane(cfg, p) {
		fi, err := os.Stat(files[i])
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", files[i], fi.Mode())
		}
		want, _ := Render(cfg, p, c)
		if got, _ := os.ReadFile(files[i]); !bytes.Equal(got, want) {
			t.Errorf("%s differs from Render", files[i])
		}
		if target, err := os.Readlink(p.ComponentBinary(c.Name)); err != nil || target != exe {
			t.Errorf("%s -> %q (%v), want %s", p.ComponentBinary(c.Name), target, err, exe)
		}
	}
	if !strings.Contains(log.String(), "[etcd] Writing systemd unit for etcd to "+files[0]) {
		t.Errorf("log:\n%s", log.String())
	}
	log.Reset()
	writeAll(t, cfg, p, Options{Log: &log, Executable: src, FS: rootOwned})
	if strings.Count(log.String(), "Using existing systemd unit") != 5 || strings.Count(log.String(), "Using existing kubestrap binary "+exe) != 5 {
		t.Errorf("second run log:\n%s", log.String())
	}
	if entries, _ := os.ReadDir(p.SystemdUnitDir()); len(entries) != 5 {
		t.Errorf("%s holds %d entries, want 5 (four components and the CSR approver)", p.SystemdUnitDir(), len(entries))
	}
}

func TestWriteUnitDryRun(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfg, p := baseConfig(), paths.MustUnder(root)
	var log bytes.Buffer
	src := testExecutable(t)
	exe := p.InstalledBinary(sha256File(t, src))
	writeAll(t, cfg, p, Options{Files: fsutil.NewDryRun(&log), Log: &log, Executable: src})
	if !strings.Contains(log.String(), "[dryrun] Would install "+src+" to "+exe) {
		t.Errorf("dry run does not mention installing the binary:\n%s", log.String())
	}
	for _, c := range components.ControlPlane(cfg, p) {
		b, _ := Render(cfg, p, c)
		if !strings.Contains(log.String(), string(b)) {
			t.Errorf("dry run does not print the %s unit in full", c.Name)
		}
		if !strings.Contains(log.String(), "[dryrun] Would link "+p.ComponentBinary(c.Name)+" -> "+exe) {
			t.Errorf("dry run does not mention the %s symlink", c.Name)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("dry run wrote under the root: %v", entries)
	}
}

// TestSystemdAnalyzeVerify runs systemd's own checker over the four units together, and over the
// kubelet's unit with its drop-in. It needs the component symlinks to exist (verify checks that
// ExecStart is executable), which WriteUnit creates in the temporary root.
func TestSystemdAnalyzeVerify(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	exe := testExecutable(t)
	for _, tc := range goldenCases {
		root := t.TempDir()
		cfg, p := tc.cfg(), paths.MustUnder(root)
		files := writeAll(t, cfg, p, Options{Executable: exe, FS: rootOwned})
		verify(t, tool, tc.name, files)
	}

	root := t.TempDir()
	p := paths.MustUnder(root)
	u, d, err := KubeletUnits(p, exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(fsutil.NewDisk(nil), KubeletUnitPath(p), u, UnitFileMode, "kubelet unit", "[test]", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(fsutil.NewDisk(nil), KubeletDropInPath(p), d, UnitFileMode, "kubelet drop-in", "[test]", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	verify(t, tool, "kubelet", []string{KubeletUnitPath(p)})
}

func verify(t *testing.T, tool, name string, files []string) {
	t.Helper()
	cmd := exec.Command(tool, append([]string{"verify", "--man=no"}, files...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("%s: systemd-analyze verify %v: %v\n%s", name, files, err, out)
	}
}

// fakeManager records calls.
type fakeManager struct {
	changed []string
	calls   []string
}

func (f *fakeManager) Reload(context.Context) error { f.calls = append(f.calls, "reload"); return nil }
func (f *fakeManager) EnableAndStart(_ context.Context, u []string) error {
	f.calls = append(f.calls, "start "+strings.Join(u, ","))
	return nil
}
func (f *fakeManager) EnableAndRestart(_ context.Context, u []string) error {
	f.calls = append(f.calls, "restart "+strings.Join(u, ","))
	return nil
}
func (f *fakeManager) StopAndDisable(_ context.Context, u []string) error {
	f.calls = append(f.calls, "stop "+strings.Join(u, ","))
	return nil
}
func (f *fakeManager) Changed(context.Context, []string) ([]string, error) {
	f.calls = append(f.calls, "changed")
	return f.changed, nil
}
func (f *fakeManager) Close() {}

func TestStart(t *testing.T) {
	t.Parallel()
	m := &fakeManager{changed: []string{"kube-apiserver.service"}}
	units := []string{"etcd.service", "kube-apiserver.service", "kube-scheduler.service"}
	if err := Start(context.Background(), m, units, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"changed", "reload", "start etcd.service", "restart kube-apiserver.service", "start kube-scheduler.service"}
	if !slices.Equal(m.calls, want) {
		t.Errorf("calls = %q, want %q", m.calls, want)
	}
}

func TestManualCommands(t *testing.T) {
	t.Parallel()
	units := []string{"etcd.service", "kube-apiserver.service"}
	if got, want := ManualStartCommand(paths.MustUnder("/"), units), "systemctl daemon-reload && systemctl enable --now etcd.service kube-apiserver.service"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := ManualStartCommand(paths.MustUnder("/srv/n1"), units), "systemctl link /srv/n1/etc/systemd/system/etcd.service /srv/n1/etc/systemd/system/kube-apiserver.service && systemctl daemon-reload && systemctl enable --now etcd.service kube-apiserver.service"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := KubeletRestartCommand(paths.MustUnder("/")), "systemctl daemon-reload && systemctl enable kubelet.service && systemctl restart kubelet.service"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := KubeletRestartCommand(paths.MustUnder("/srv/n1")), "systemctl link /srv/n1/etc/systemd/system/kubelet.service && install -D -m 0644 /srv/n1/etc/systemd/system/kubelet.service.d/10-kubeadm.conf /etc/systemd/system/kubelet.service.d/10-kubeadm.conf && systemctl daemon-reload && systemctl enable kubelet.service && systemctl restart kubelet.service"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if ok, _ := Manageable(paths.MustUnder("/srv/n1")); ok {
		t.Error("units under a root dir are manageable")
	}
}
