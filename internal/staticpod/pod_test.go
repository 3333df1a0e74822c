package staticpod

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
)

const goldenDir = "../../testdata/staticpod"

// baseConfig is `init --apiserver-advertise-address=192.168.0.10 --node-name=node1` with every
// other value defaulted.
func baseConfig() *config.Config { return configtest.Init("192.168.0.10", "node1") }

// customConfig has extraArgs, extraVolumes, extraEnvs, an external etcd, another image
// repository and a shorter health timeout.
func customConfig() *config.Config {
	cfg := baseConfig()
	cfg.Cluster.ImageRepository = "registry.example.com/k8s"
	cfg.Cluster.KubernetesVersion = "v1.37.2+corp.1"
	cfg.Init.Timeouts.ControlPlaneComponentHealthCheck = &metav1.Duration{Duration: 95 * time.Second}
	cfg.Cluster.Etcd = config.Etcd{External: &config.ExternalEtcd{
		Endpoints: []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"},
		CAFile:    "/etc/etcd/pki/ca.crt",
		CertFile:  "/etc/etcd/client/apiserver.crt",
		KeyFile:   "/etc/etcd/client/apiserver.key",
	}}
	cfg.Cluster.APIServer.ExtraArgs = []config.Arg{
		{Name: "oidc-ca-file", Value: "/etc/oidc/ca.crt"},
		{Name: "oidc-issuer-url", Value: "https://issuer.example.com"},
		{Name: "audit-log-maxage", Value: "7"},
	}
	cfg.Cluster.APIServer.ExtraVolumes = []config.HostPathMount{
		{Name: "oidc", HostPath: "/etc/oidc", MountPath: "/etc/oidc", ReadOnly: true, PathType: corev1.HostPathDirectory},
	}
	cfg.Cluster.APIServer.ExtraEnvs = []config.EnvVar{
		{EnvVar: corev1.EnvVar{Name: "GOMAXPROCS", Value: "2"}},
		{EnvVar: corev1.EnvVar{Name: "NO_PROXY", Value: "10.0.0.0/8,.example.com"}},
	}
	cfg.Cluster.ControllerManager.ExtraArgs = []config.Arg{
		{Name: "bind-address", Value: "0.0.0.0"},
		{Name: "flex-volume-plugin-dir", Value: "/opt/flex"},
	}
	cfg.Cluster.ControllerManager.ExtraVolumes = []config.HostPathMount{
		{Name: "flex", HostPath: "/opt/flex", MountPath: "/opt/flex"},
	}
	cfg.Cluster.Scheduler.ExtraArgs = []config.Arg{{Name: "config", Value: "/etc/kubernetes/scheduler-config.yaml"}}
	cfg.Cluster.Scheduler.ExtraVolumes = []config.HostPathMount{
		{Name: "config", HostPath: "/etc/kubernetes/scheduler-config.yaml", MountPath: "/etc/kubernetes/scheduler-config.yaml", ReadOnly: true, PathType: corev1.HostPathFile},
	}
	return cfg
}

// testHost has two distribution CA directories and a proxy in its environment, so the golden
// manifests show both without depending on the machine running the test.
func testHost(environ ...string) host {
	return host{
		isDir: func(path string) bool {
			return path == "/etc/pki/ca-trust" || path == "/usr/share/ca-certificates"
		},
		environ: environ,
	}
}

var goldenCases = []struct {
	name    string
	cfg     func() *config.Config
	environ []string
}{
	{"default", baseConfig, nil},
	{"custom", customConfig, []string{"PATH=/usr/bin", "HTTPS_PROXY=http://proxy.example.com:3128", "no_proxy=localhost", "ftp_proxy="}},
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		cfg, p := tc.cfg(), paths.MustUnder("/")
		for _, c := range components.ControlPlane(cfg, p) {
			pod, err := buildPod(cfg, p, c, testHost(tc.environ...))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(goldenDir, tc.name, c.Name+".yaml"), string(b))
		}
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	golden.Check(t, path, []byte(got))
}

// TestManifestsRoundTrip holds every golden manifest to what the kubelet reads: a v1.Pod equal
// to the one built, whose command is the component name and then exactly its argument list.
func TestManifestsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		cfg, p := tc.cfg(), paths.MustUnder("/")
		for _, c := range components.ControlPlane(cfg, p) {
			built, err := buildPod(cfg, p, c, testHost(tc.environ...))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(goldenDir, tc.name, c.Name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict(b, &pod); err != nil {
				t.Fatalf("%s/%s: %v", tc.name, c.Name, err)
			}
			if !reflect.DeepEqual(pod.Spec.Containers[0].Command, built.Spec.Containers[0].Command) {
				t.Errorf("%s/%s: golden command differs from the built one", tc.name, c.Name)
			}
			cmd := pod.Spec.Containers[0].Command
			if cmd[0] != c.Name || !slices.Equal(cmd[1:], c.Args) {
				t.Errorf("%s/%s: command = %q, want %q followed by the component's args", tc.name, c.Name, cmd, c.Name)
			}
		}
	}
}

// TestKubeadmProperties checks, field by field, what reference §4 says every kubeadm pod has.
func TestKubeadmProperties(t *testing.T) {
	t.Parallel()
	cfg, p := baseConfig(), paths.MustUnder("/")
	wantImage := map[string]string{
		components.EtcdName:              "registry.k8s.io/etcd:3.7.0-0",
		components.APIServerName:         "registry.k8s.io/kube-apiserver:v1.37.2",
		components.ControllerManagerName: "registry.k8s.io/kube-controller-manager:v1.37.2",
		components.SchedulerName:         "registry.k8s.io/kube-scheduler:v1.37.2",
	}
	wantCPU := map[string]string{components.EtcdName: "100m", components.APIServerName: "250m", components.ControllerManagerName: "200m", components.SchedulerName: "100m"}
	wantProbe := map[string][4]string{ // host, scheme, liveness path, startup path
		components.EtcdName:              {"127.0.0.1", "HTTP", "/livez", "/readyz"},
		components.APIServerName:         {"192.168.0.10", "HTTPS", "/livez", "/livez"},
		components.ControllerManagerName: {"127.0.0.1", "HTTPS", "/healthz", "/healthz"},
		components.SchedulerName:         {"127.0.0.1", "HTTPS", "/livez", "/livez"},
	}
	wantPort := map[string]int32{components.EtcdName: 2381, components.APIServerName: 6443, components.ControllerManagerName: 10257, components.SchedulerName: 10259}
	for _, c := range components.ControlPlane(cfg, p) {
		if c.Name == components.CSRApproverName {
			continue // kubestrap's own component: TestCSRApproverPod
		}
		pod, err := buildPod(cfg, p, c, testHost())
		if err != nil {
			t.Fatal(err)
		}
		s := pod.Spec
		ctr := s.Containers[0]
		if pod.Namespace != "kube-system" || pod.Labels["component"] != c.Name || pod.Labels["tier"] != "control-plane" {
			t.Errorf("%s: metadata %+v", c.Name, pod.ObjectMeta)
		}
		if !s.HostNetwork || s.PriorityClassName != "system-node-critical" || s.Priority == nil || *s.Priority != 2000001000 {
			t.Errorf("%s: hostNetwork/priority wrong", c.Name)
		}
		if s.SecurityContext == nil || s.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: seccomp profile not RuntimeDefault", c.Name)
		}
		if ctr.Image != wantImage[c.Name] || ctr.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("%s: image %s %s", c.Name, ctr.Image, ctr.ImagePullPolicy)
		}
		if got := ctr.Resources.Requests.Cpu().String(); got != wantCPU[c.Name] || len(ctr.Resources.Limits) != 0 {
			t.Errorf("%s: cpu request %s, limits %v", c.Name, got, ctr.Resources.Limits)
		}
		if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "probe-port" || ctr.Ports[0].ContainerPort != wantPort[c.Name] {
			t.Errorf("%s: ports %+v", c.Name, ctr.Ports)
		}
		w := wantProbe[c.Name]
		l, st := ctr.LivenessProbe, ctr.StartupProbe
		if g := l.HTTPGet; g.Host != w[0] || string(g.Scheme) != w[1] || g.Path != w[2] || g.Port.StrVal != "probe-port" {
			t.Errorf("%s: liveness %+v", c.Name, g)
		}
		if l.InitialDelaySeconds != 10 || l.TimeoutSeconds != 15 || l.PeriodSeconds != 10 || l.FailureThreshold != 8 {
			t.Errorf("%s: liveness timings %+v", c.Name, l)
		}
		if st.HTTPGet.Path != w[3] || st.InitialDelaySeconds != 10 || st.TimeoutSeconds != 15 || st.PeriodSeconds != 10 || st.FailureThreshold != 24 {
			t.Errorf("%s: startup %+v", c.Name, st)
		}
		r := ctr.ReadinessProbe
		if c.Name == components.ControllerManagerName {
			if r != nil {
				t.Errorf("%s: has a readiness probe", c.Name)
			}
		} else if r == nil || r.HTTPGet.Path != "/readyz" || r.InitialDelaySeconds != 0 || r.TimeoutSeconds != 15 || r.PeriodSeconds != 1 || r.FailureThreshold != 3 {
			t.Errorf("%s: readiness %+v", c.Name, r)
		}
		if len(s.Volumes) != len(ctr.VolumeMounts) {
			t.Errorf("%s: %d volumes, %d mounts", c.Name, len(s.Volumes), len(ctr.VolumeMounts))
		}
		names := []string{}
		for _, v := range s.Volumes {
			names = append(names, v.Name)
		}
		if !slices.IsSorted(names) {
			t.Errorf("%s: volumes not sorted by name: %v", c.Name, names)
		}
	}
}

func TestAnnotations(t *testing.T) {
	t.Parallel()
	cfg, p := baseConfig(), paths.MustUnder("/")
	api, _ := buildPod(cfg, p, components.APIServer(cfg, p), testHost())
	if got := api.Annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"]; got != "192.168.0.10:6443" {
		t.Errorf("apiserver endpoint annotation = %q", got)
	}
	etcd, _ := buildPod(cfg, p, components.Etcd(cfg, p), testHost())
	if got := etcd.Annotations["kubeadm.kubernetes.io/etcd.advertise-client-urls"]; got != "https://192.168.0.10:2379" {
		t.Errorf("etcd annotation = %q", got)
	}
}

func TestVolumes(t *testing.T) {
	t.Parallel()
	type vol struct {
		host, mount string
		ro          bool
		typ         corev1.HostPathType
	}
	volumes := func(pod *corev1.Pod) map[string]vol {
		out := map[string]vol{}
		for i, v := range pod.Spec.Volumes {
			m := pod.Spec.Containers[0].VolumeMounts[i]
			if m.Name != v.Name {
				t.Fatalf("mount %d is %s, volume is %s", i, m.Name, v.Name)
			}
			out[v.Name] = vol{v.HostPath.Path, m.MountPath, m.ReadOnly, *v.HostPath.Type}
		}
		return out
	}
	dirRO := func(path string) vol { return vol{path, path, true, corev1.HostPathDirectoryOrCreate} }
	caRO := func(path string) vol { return vol{path, path, true, corev1.HostPathDirectoryOrCreate} }

	cfg, p := baseConfig(), paths.MustUnder("/")
	want := map[string]map[string]vol{
		components.EtcdName: {
			"etcd-data":  {"/var/lib/etcd", "/var/lib/etcd", false, corev1.HostPathDirectoryOrCreate},
			"etcd-certs": {"/etc/kubernetes/pki/etcd", "/etc/kubernetes/pki/etcd", false, corev1.HostPathDirectoryOrCreate},
		},
		components.APIServerName: {
			"k8s-certs":                 dirRO("/etc/kubernetes/pki"),
			"ca-certs":                  caRO("/etc/ssl/certs"),
			"etc-pki-ca-trust":          caRO("/etc/pki/ca-trust"),
			"usr-share-ca-certificates": caRO("/usr/share/ca-certificates"),
			"kubestrap-config":          dirRO("/etc/kubernetes/kubestrap"),
			"audit-log":                 {"/var/log/kubestrap/audit", "/var/log/kubestrap/audit", false, corev1.HostPathDirectoryOrCreate},
		},
		components.ControllerManagerName: {
			"k8s-certs":                 dirRO("/etc/kubernetes/pki"),
			"ca-certs":                  caRO("/etc/ssl/certs"),
			"etc-pki-ca-trust":          caRO("/etc/pki/ca-trust"),
			"usr-share-ca-certificates": caRO("/usr/share/ca-certificates"),
			"kubeconfig":                {"/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/controller-manager.conf", true, corev1.HostPathFileOrCreate},
		},
		components.SchedulerName: {
			"kubeconfig": {"/etc/kubernetes/scheduler.conf", "/etc/kubernetes/scheduler.conf", true, corev1.HostPathFileOrCreate},
		},
		components.CSRApproverName: {
			"kubeconfig": {"/etc/kubernetes/csr-approver.conf", "/etc/kubernetes/csr-approver.conf", true, corev1.HostPathFileOrCreate},
		},
	}
	for _, c := range components.ControlPlane(cfg, p) {
		pod, err := buildPod(cfg, p, c, testHost())
		if err != nil {
			t.Fatal(err)
		}
		if got := volumes(pod); !reflect.DeepEqual(got, want[c.Name]) {
			t.Errorf("%s volumes:\n got %v\nwant %v", c.Name, got, want[c.Name])
		}
	}

	// External etcd: the directories of its files are mounted where the flags point, once each;
	// user volumes are added as given.
	cfg = customConfig()
	api, err := buildPod(cfg, p, components.APIServer(cfg, p), testHost())
	if err != nil {
		t.Fatal(err)
	}
	got := volumes(api)
	for name, w := range map[string]vol{
		"etcd-certs-0": dirRO("/etc/etcd/pki"),
		"etcd-certs-1": dirRO("/etc/etcd/client"),
		"oidc":         {"/etc/oidc", "/etc/oidc", true, corev1.HostPathDirectory},
	} {
		if got[name] != w {
			t.Errorf("custom apiserver volume %s = %+v, want %+v", name, got[name], w)
		}
	}
	if _, ok := got["etcd-certs-2"]; ok {
		t.Error("the external etcd's key directory is mounted twice")
	}
}

// TestRootDir: every path a flag names is mounted at the same path under the root, and the CA
// directories are looked for under the root, on the real filesystem.
func TestRootDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/pki/tls/certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, p := baseConfig(), paths.MustUnder(root)
	pod, err := Pod(cfg, p, components.APIServer(cfg, p))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, v := range pod.Spec.Volumes {
		names = append(names, v.Name)
		m := pod.Spec.Containers[0].VolumeMounts[i]
		if !strings.HasPrefix(v.HostPath.Path, root+"/") {
			t.Errorf("volume %s: host path %s is outside the root", v.Name, v.HostPath.Path)
		}
		switch v.Name {
		case "ca-certs", "etc-pki-tls-certs":
			if m.MountPath != strings.TrimPrefix(v.HostPath.Path, root) {
				t.Errorf("volume %s mounted at %s", v.Name, m.MountPath)
			}
		default:
			if m.MountPath != v.HostPath.Path {
				t.Errorf("volume %s: %s mounted at %s", v.Name, v.HostPath.Path, m.MountPath)
			}
		}
	}
	if !slices.Contains(names, "etc-pki-tls-certs") || slices.Contains(names, "etc-pki-ca-trust") {
		t.Errorf("volumes %v: want etc-pki-tls-certs (exists under the root) and not etc-pki-ca-trust", names)
	}
}

func TestImageOverrides(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.Cluster.ImageRepository = "mirror.local"
	cfg.Cluster.KubernetesVersion = "v1.36.4"
	cfg.Cluster.Etcd.Local.ImageTag = "3.6.5-0"
	for name, want := range map[string]string{
		components.APIServerName: "mirror.local/kube-apiserver:v1.36.4",
		components.EtcdName:      "mirror.local/etcd:3.6.5-0",
	} {
		if got, _ := Image(cfg, name); got != want {
			t.Errorf("Image(%s) = %s, want %s", name, got, want)
		}
	}
	cfg.Cluster.Etcd.Local.ImageRepository = "etcd.local"
	if got, _ := Image(cfg, components.EtcdName); got != "etcd.local/etcd:3.6.5-0" {
		t.Errorf("etcd image with its own repository = %s", got)
	}
}

func TestStartupThreshold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		timeout time.Duration
		want    int32
	}{{4 * time.Minute, 24}, {95 * time.Second, 10}, {10 * time.Second, 1}} {
		_, _, st := probes(components.Probe{LivenessPath: "/livez", StartupPath: "/livez"}, tc.timeout)
		if st.FailureThreshold != tc.want {
			t.Errorf("timeout %v: failureThreshold %d, want %d", tc.timeout, st.FailureThreshold, tc.want)
		}
	}
}

func TestEnv(t *testing.T) {
	t.Parallel()
	cfg := customConfig()
	env, err := Env(cfg, components.APIServerName, []string{"HTTPS_PROXY=http://p:3128", "NO_PROXY=localhost", "HOME=/root", "http_proxy="})
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.EnvVar{
		{Name: "GOMAXPROCS", Value: "2"},
		{Name: "HTTPS_PROXY", Value: "http://p:3128"},
		{Name: "NO_PROXY", Value: "10.0.0.0/8,.example.com"}, // extraEnvs win
	}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env = %+v, want %+v", env, want)
	}
	if env, _ := Env(baseConfig(), components.SchedulerName, []string{"HOME=/root"}); env != nil {
		t.Errorf("env without proxies = %+v, want none", env)
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfg, p := baseConfig(), paths.MustUnder(root)
	pod, err := buildPod(cfg, p, components.Scheduler(cfg, p), testHost())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := Write(p, pod, Options{Log: &log}); err != nil {
		t.Fatal(err)
	}
	path := p.Manifest("kube-scheduler")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("manifest mode %v, want 0600", fi.Mode())
	}
	if di, _ := os.Stat(p.ManifestsDir()); di.Mode().Perm() != 0o700 {
		t.Errorf("manifests dir mode %v, want 0700", di.Mode())
	}
	first, _ := os.ReadFile(path)
	if want, _ := Marshal(pod); !bytes.Equal(first, want) {
		t.Error("written manifest differs from Marshal")
	}
	if !strings.Contains(log.String(), `[control-plane] Creating static Pod manifest for "kube-scheduler"`) {
		t.Errorf("log: %s", log.String())
	}

	log.Reset()
	if err := Write(p, pod, Options{Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "Using existing static Pod manifest") {
		t.Errorf("second write log: %s", log.String())
	}

	pod.Spec.Containers[0].Command = append(pod.Spec.Containers[0].Command, "--v=2")
	if err := Write(p, pod, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte("--v=2")) {
		t.Error("a changed manifest was not replaced")
	}
	if entries, _ := os.ReadDir(p.ManifestsDir()); len(entries) != 1 {
		t.Errorf("manifests dir holds %d entries, want 1 (no temporary files)", len(entries))
	}
}

func TestWriteDryRun(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfg, p := baseConfig(), paths.MustUnder(root)
	var log bytes.Buffer
	for _, c := range components.ControlPlane(cfg, p) {
		pod, err := Pod(cfg, p, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(p, pod, Options{Files: fsutil.NewDryRun(&log), Log: &log}); err != nil {
			t.Fatal(err)
		}
		b, _ := Marshal(pod)
		if !strings.Contains(log.String(), "[dryrun] Would write file "+p.Manifest(c.Name)) || !strings.Contains(log.String(), string(b)) {
			t.Errorf("dry run does not print the full %s manifest", c.Name)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("dry run wrote under the root: %v", entries)
	}
}

// TestCSRApproverPod: kubestrap's approver runs as a static pod like the control-plane components
// (host network, node-critical priority, RuntimeDefault seccomp, its kubeconfig read-only), from
// the image made of the kubestrap binary, and is probed like them: liveness and startup on its
// /healthz, readiness on its /readyz, plain HTTP on 127.0.0.1 at csrApprover.healthPort. The
// probes are what make the kubelet sync its mirror Pod with the others'.
func TestCSRApproverPod(t *testing.T) {
	t.Parallel()
	cfg, p := baseConfig(), paths.MustUnder("/")
	cfg.Kubestrap.CSRApprover.HealthPort = 20261
	pod, err := buildPod(cfg, p, components.CSRApprover(cfg, p), testHost())
	if err != nil {
		t.Fatal(err)
	}
	ctr := pod.Spec.Containers[0]
	if want := []string{"kubestrap-csr-approver", "--healthz-bind-address=127.0.0.1:20261", "--kubeconfig=/etc/kubernetes/csr-approver.conf"}; !slices.Equal(ctr.Command, want) {
		t.Errorf("command %q, want %q", ctr.Command, want)
	}
	if ctr.Image != "registry.k8s.io/kubestrap-csr-approver:v1.37.2" {
		t.Errorf("image %s", ctr.Image)
	}
	if want := []corev1.ContainerPort{{Name: ProbePortName, ContainerPort: 20261, Protocol: corev1.ProtocolTCP}}; !reflect.DeepEqual(ctr.Ports, want) {
		t.Errorf("ports %v, want %v", ctr.Ports, want)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", ctr.LivenessProbe, "/healthz"}, {"readiness", ctr.ReadinessProbe, "/readyz"}, {"startup", ctr.StartupProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s probe %v, want an HTTP GET of %s", pr.name, pr.probe, pr.path)
			continue
		}
		want := corev1.HTTPGetAction{Host: "127.0.0.1", Path: pr.path, Port: intstr.FromString(ProbePortName), Scheme: corev1.URISchemeHTTP}
		if !reflect.DeepEqual(*pr.probe.HTTPGet, want) {
			t.Errorf("%s probe %+v, want %+v", pr.name, *pr.probe.HTTPGet, want)
		}
	}
	s := pod.Spec
	if !s.HostNetwork || s.PriorityClassName != PriorityClassName || s.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("spec %+v", s)
	}
}
