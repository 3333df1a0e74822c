// Package staticpod owns the static Pod manifests of the control plane
// (<root>/etc/kubernetes/manifests/*.yaml): typed k8s.io/api/core/v1 Pods built from the
// components' argument lists with everything kubeadm v1.37.2 puts around them — labels,
// annotations, host network, priority, seccomp, probes, resource requests, hostPath volumes, image
// and environment — and their idempotent, atomic writing. The container command is the
// component's name followed by exactly the flags the local supervisor and the systemd units use.
package staticpod

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// kubeadm's values for every control-plane pod (ComponentPod, reference §4).
const (
	Namespace         = metav1.NamespaceSystem
	Tier              = "control-plane"
	PriorityClassName = "system-node-critical"
	// Priority is the value of system-node-critical; kubeadm sets it as well as the class name
	// because a static pod is created by the kubelet, where no priority admission runs.
	Priority int32 = 2000001000

	// ProbePortName names the container port the probes use.
	ProbePortName = "probe-port"

	// DefaultEtcdImageTag is the etcd image kubeadm v1.37.2 deploys.
	DefaultEtcdImageTag = "3.7.0-0"

	// Annotations through which kubeadm publishes a member's endpoints on its pod.
	APIServerEndpointAnnotation = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
	EtcdClientURLsAnnotation    = "kubeadm.kubernetes.io/etcd.advertise-client-urls"
)

// caCertDirs are the distribution CA bundle locations kubeadm mounts into the apiserver and the
// controller-manager when they exist on the host, so that outgoing TLS (OIDC, webhooks, cloud
// APIs) trusts what the host trusts, whatever the distribution (reference §4, volumes.go).
var caCertDirs = []string{
	"/etc/pki/ca-trust",
	"/etc/pki/tls/certs",
	"/etc/ca-certificates",
	"/usr/share/ca-certificates",
	"/usr/local/share/ca-certificates",
}

// host is what a pod depends on beyond the configuration; tests substitute it so the golden
// manifests do not depend on the machine that renders them.
type host struct {
	// isDir reports whether a path (already under the root) is an existing directory.
	isDir func(string) bool
	// environ is the environment proxy variables are taken from, as os.Environ returns it.
	environ []string
}

func realHost() host {
	return host{
		isDir: func(path string) bool {
			fi, err := os.Stat(path)
			return err == nil && fi.IsDir()
		},
		environ: os.Environ(),
	}
}

// Pod returns the static Pod that runs c as kubeadm v1.37.2 would, with c.Args as the flags.
// The CA-certificate directories that exist under the root dir are mounted, and the proxy
// variables of the current environment are passed on, as kubeadm does.
func Pod(cfg *config.Config, p paths.Paths, c components.Component) (*corev1.Pod, error) {
	return buildPod(cfg, p, c, realHost())
}

func buildPod(cfg *config.Config, p paths.Paths, c components.Component, h host) (*corev1.Pod, error) {
	var (
		requests    corev1.ResourceList
		annotations map[string]string
	)
	args := components.ArgMap(c.Args)
	vols := volumeSet{}
	switch c.Name {
	case components.EtcdName:
		requests = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("100Mi"),
		}
		annotations = map[string]string{EtcdClientURLsAnnotation: args["advertise-client-urls"]}
		etcdVolumes(vols, cfg, p, args)
	case components.APIServerName:
		requests = cpu("250m")
		annotations = map[string]string{APIServerEndpointAnnotation: apiServerEndpoint(cfg)}
		apiServerVolumes(vols, cfg, p, args, h)
	case components.ControllerManagerName:
		requests = cpu("200m")
		certVolumes(vols, cfg, p, h)
		vols.add("kubeconfig", p.Kubeconfig("controller-manager.conf"), "", true, corev1.HostPathFileOrCreate)
	case components.SchedulerName:
		requests = cpu("100m")
		vols.add("kubeconfig", p.Kubeconfig("scheduler.conf"), "", true, corev1.HostPathFileOrCreate)
	case components.CSRApproverName:
		// A watch and an occasional approval: far below the scheduler's 100m.
		requests = cpu("10m")
		vols.add("kubeconfig", p.Kubeconfig("csr-approver.conf"), "", true, corev1.HostPathFileOrCreate)
	default:
		return nil, fmt.Errorf("no static pod for component %q", c.Name)
	}
	for _, v := range extraVolumes(cfg, c.Name) {
		// Like kubeadm, a user volume of the same name replaces the built-in one. Its paths are
		// used as given: they pair with extraArgs, which are not moved under the root either.
		vols.add(v.Name, v.HostPath, v.MountPath, v.ReadOnly, v.PathType)
	}

	env, err := Env(cfg, c.Name, h.environ)
	if err != nil {
		return nil, err
	}
	image, err := Image(cfg, c.Name)
	if err != nil {
		return nil, err
	}
	volumes, mounts := vols.sorted()

	container := corev1.Container{
		Name:            c.Name,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         append([]string{c.Name}, c.Args...),
		Env:             env,
		Resources:       corev1.ResourceRequirements{Requests: requests},
		VolumeMounts:    mounts,
	}
	// Every component kubestrap runs serves health; a component without (Health.Port 0) would get
	// neither a port nor probes, and the kubelet would only restart it when it exits.
	if c.Health.Port != 0 {
		container.Ports = []corev1.ContainerPort{{
			Name:          ProbePortName,
			ContainerPort: c.Health.Port,
			Protocol:      corev1.ProtocolTCP,
		}}
		container.LivenessProbe, container.ReadinessProbe, container.StartupProbe = probes(c.Health, cfg.ControlPlaneHealthTimeout())
	}

	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        c.Name,
			Namespace:   Namespace,
			Labels:      map[string]string{"component": c.Name, "tier": Tier},
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			Containers:        []corev1.Container{container},
			HostNetwork:       true,
			Priority:          ptrTo(Priority),
			PriorityClassName: PriorityClassName,
			SecurityContext: &corev1.PodSecurityContext{
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Volumes: volumes,
		},
	}, nil
}

func cpu(q string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(q)}
}

func ptrTo[T any](v T) *T { return &v }

// apiServerEndpoint is the annotation value kubeadm reads back (e.g. by upgrade and by the
// control-plane join of another member) to learn where this member's apiserver is.
func apiServerEndpoint(cfg *config.Config) string {
	return net.JoinHostPort(cfg.AdvertiseAddress(), strconv.Itoa(int(cfg.BindPort())))
}

// Image is the container image of a control-plane component: <imageRepository>/<name>:<version>
// for the Kubernetes components (a "+" in the version becomes "_", which tags cannot hold), and
// etcd's own repository and tag overrides for etcd.
func Image(cfg *config.Config, component string) (string, error) {
	repo := cfg.Cluster.ImageRepository
	if repo == "" {
		repo = config.DefaultImageRepository
	}
	switch component {
	case components.EtcdName:
		tag := DefaultEtcdImageTag
		if l := cfg.Cluster.Etcd.Local; l != nil {
			if l.ImageRepository != "" {
				repo = l.ImageRepository
			}
			if l.ImageTag != "" {
				tag = l.ImageTag
			}
		}
		return repo + "/etcd:" + tag, nil
	case components.APIServerName, components.ControllerManagerName, components.SchedulerName:
		v := cfg.Cluster.KubernetesVersion
		if v == "" {
			v = config.BundledKubernetesVersion
		}
		return repo + "/" + component + ":" + strings.ReplaceAll(v, "+", "_"), nil
	case components.CSRApproverName:
		// kubestrap's own program: an image made from the kubestrap binary (entrypoint named
		// after the component, like the other images made from it), tagged with the bundled
		// Kubernetes version it ships with. No public registry serves it.
		return repo + "/" + component + ":" + strings.ReplaceAll(config.BundledKubernetesVersion, "+", "_"), nil
	}
	return "", fmt.Errorf("no image for component %q", component)
}

// probes are kubeadm's liveness, readiness and startup probes. The startup probe allows the
// whole control-plane health timeout before liveness takes over, so a slow first start (etcd
// replaying its WAL, the apiserver filling caches) is not killed.
func probes(pr components.Probe, healthTimeout time.Duration) (liveness, readiness, startup *corev1.Probe) {
	get := func(path string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Host:   pr.Host,
			Path:   path,
			Port:   intstr.FromString(ProbePortName),
			Scheme: corev1.URIScheme(pr.Scheme),
		}}
	}
	const period = 10
	liveness = &corev1.Probe{
		ProbeHandler:        get(pr.LivenessPath),
		InitialDelaySeconds: 10,
		TimeoutSeconds:      15,
		PeriodSeconds:       period,
		FailureThreshold:    8,
	}
	if pr.ReadinessPath != "" {
		readiness = &corev1.Probe{
			ProbeHandler:     get(pr.ReadinessPath),
			TimeoutSeconds:   15,
			PeriodSeconds:    1,
			FailureThreshold: 3,
		}
	}
	startup = &corev1.Probe{
		ProbeHandler:        get(pr.StartupPath),
		InitialDelaySeconds: 10,
		TimeoutSeconds:      15,
		PeriodSeconds:       period,
		FailureThreshold:    int32(math.Ceil(healthTimeout.Seconds() / period)),
	}
	return liveness, readiness, startup
}

// Env is a component's environment: the proxy variables of environ (kubeadm passes on every
// non-empty *_proxy variable of its own environment, so components reach webhooks and OIDC
// providers the way the host does), merged with the component's extraEnvs, which win by name;
// sorted by name so the result does not depend on the order of environ.
func Env(cfg *config.Config, component string, environ []string) ([]corev1.EnvVar, error) {
	byName := map[string]corev1.EnvVar{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if ok && value != "" && strings.HasSuffix(strings.ToLower(name), "_proxy") {
			byName[name] = corev1.EnvVar{Name: name, Value: value}
		}
	}
	extra, err := extraEnvs(cfg, component)
	if err != nil {
		return nil, err
	}
	for _, e := range extra {
		byName[e.Name] = e.EnvVar
	}
	if len(byName) == 0 {
		return nil, nil
	}
	out := make([]corev1.EnvVar, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b corev1.EnvVar) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func extraEnvs(cfg *config.Config, component string) ([]config.EnvVar, error) {
	switch component {
	case components.EtcdName:
		if l := cfg.Cluster.Etcd.Local; l != nil {
			return l.ExtraEnvs, nil
		}
		return nil, nil
	case components.APIServerName:
		return cfg.Cluster.APIServer.ExtraEnvs, nil
	case components.ControllerManagerName:
		return cfg.Cluster.ControllerManager.ExtraEnvs, nil
	case components.SchedulerName:
		return cfg.Cluster.Scheduler.ExtraEnvs, nil
	case components.CSRApproverName:
		// kubestrap's component: kubeadm's configuration has no field for it.
		return nil, nil
	}
	return nil, fmt.Errorf("unknown component %q", component)
}

func extraVolumes(cfg *config.Config, component string) []config.HostPathMount {
	switch component {
	case components.APIServerName:
		return cfg.Cluster.APIServer.ExtraVolumes
	case components.ControllerManagerName:
		return cfg.Cluster.ControllerManager.ExtraVolumes
	case components.SchedulerName:
		return cfg.Cluster.Scheduler.ExtraVolumes
	}
	// etcd has no extraVolumes in v1beta4.
	return nil
}

// withinDir reports whether path is dir or lies below it.
func withinDir(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
