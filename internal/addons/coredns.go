// Package addons owns the cluster add-ons init installs as kubeadm v1.37.2 does (phases
// addon/coredns and addon/kube-proxy): CoreDNS (Deployment, Service kube-dns, Corefile ConfigMap,
// ServiceAccount and RBAC) and kube-proxy (DaemonSet, ConfigMap from the KubeProxyConfiguration
// document, ServiceAccount and RBAC), as typed objects with kubeadm's names, labels and images.
// Ensure writes them with server-side apply as kubeclient.FieldManager and leaves the fields it
// does not own (see Owned) to their users, so a re-run keeps a user's edits.
package addons

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubestrap/kubestrap/internal/config"
)

// Names and versions as kubeadm v1.37.2 has them, so kubeadm's upgrade and users' tooling find
// the objects.
const (
	// CoreDNSVersion is the CoreDNS image tag kubeadm v1.37.2 deploys.
	CoreDNSVersion  = "v1.14.6"
	CoreDNSName     = "coredns"
	CoreDNSService  = "kube-dns"
	CoreDNSRole     = "system:coredns"
	CorefileKey     = "Corefile"
	coreDNSAppLabel = "kube-dns"
	// coreDNSReplicas is kubeadm's replica count for a new Deployment.
	coreDNSReplicas = 2
)

// CoreDNSImage is <repository>/coredns:<tag>, as kubeadm builds it: dns.imageRepository, else
// imageRepository; the default registry keeps CoreDNS one level down (registry.k8s.io/coredns/
// coredns) while a mirror is expected to hold it at <mirror>/coredns; dns.imageTag overrides the
// version.
func CoreDNSImage(cfg *config.Config) string {
	repo := cfg.Cluster.ImageRepository
	if repo == "" {
		repo = config.DefaultImageRepository
	}
	if cfg.Cluster.DNS.ImageRepository != "" {
		repo = cfg.Cluster.DNS.ImageRepository
	}
	if repo == config.DefaultImageRepository {
		repo += "/coredns"
	}
	tag := CoreDNSVersion
	if cfg.Cluster.DNS.ImageTag != "" {
		tag = cfg.Cluster.DNS.ImageTag
	}
	return repo + "/coredns:" + tag
}

// CoreDNS are CoreDNS's objects for cfg.
type CoreDNS struct {
	ServiceAccount     *corev1.ServiceAccount
	ClusterRole        *rbacv1.ClusterRole
	ClusterRoleBinding *rbacv1.ClusterRoleBinding
	ConfigMap          *corev1.ConfigMap
	Deployment         *appsv1.Deployment
	Service            *corev1.Service
}

// CoreDNSObjects builds CoreDNS's objects: the Service at the tenth address of the first
// service subnet, the same address the kubelets get as clusterDNS.
func CoreDNSObjects(cfg *config.Config) (*CoreDNS, error) {
	dnsIP, err := cfg.ServiceIP(10)
	if err != nil {
		return nil, fmt.Errorf("the CoreDNS Service address: %w", err)
	}
	domain := cfg.Cluster.Networking.DNSDomain
	if domain == "" {
		domain = config.DefaultDNSDomain
	}
	sys := metav1.NamespaceSystem
	appLabels := map[string]string{"k8s-app": coreDNSAppLabel}
	return &CoreDNS{
		ServiceAccount: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: CoreDNSName, Namespace: sys}},
		ClusterRole: &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: CoreDNSRole},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
				{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			},
		},
		ClusterRoleBinding: &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: CoreDNSRole},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: CoreDNSRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: CoreDNSName, Namespace: sys}},
		},
		ConfigMap: &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: CoreDNSName, Namespace: sys},
			Data:       map[string]string{CorefileKey: corefile(domain)},
		},
		Deployment: coreDNSDeployment(CoreDNSImage(cfg), appLabels),
		Service: &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{
				Name: CoreDNSService, Namespace: sys,
				Labels: map[string]string{
					"k8s-app": coreDNSAppLabel, "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS",
				},
				Annotations: map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
			},
			Spec: corev1.ServiceSpec{
				ClusterIP: dnsIP.String(),
				Ports: []corev1.ServicePort{
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
					{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
					{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
				},
				Selector: appLabels,
			},
		},
	}, nil
}

// corefile is kubeadm's Corefile for the cluster domain: cluster names answered from the API,
// everything else forwarded to the node's resolvers, and no caching of the cluster domain's
// answers (a new Service resolves at once).
func corefile(domain string) string {
	lines := []string{
		".:53 {",
		"    errors",
		"    health {",
		"       lameduck 5s",
		"    }",
		"    ready",
		"    kubernetes " + domain + " in-addr.arpa ip6.arpa {",
		"       pods insecure",
		"       fallthrough in-addr.arpa ip6.arpa",
		"       ttl 30",
		"    }",
		"    prometheus :9153",
		"    forward . /etc/resolv.conf {",
		"       max_concurrent 1000",
		"    }",
		"    cache 30 {",
		"       disable success " + domain,
		"       disable denial " + domain,
		"    }",
		"    loop",
		"    reload",
		"    loadbalance",
		"}",
	}
	return strings.Join(lines, "\n") + "\n"
}

func coreDNSDeployment(image string, appLabels map[string]string) *appsv1.Deployment {
	maxUnavailable := intstr.FromInt32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: CoreDNSName, Namespace: metav1.NamespaceSystem, Labels: appLabels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](coreDNSReplicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
				Spec: corev1.PodSpec{
					PriorityClassName:  "system-cluster-critical",
					ServiceAccountName: CoreDNSName,
					// Spread the replicas over nodes where there are several.
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
									Key: "k8s-app", Operator: metav1.LabelSelectorOpIn, Values: []string{coreDNSAppLabel},
								}}},
								TopologyKey: corev1.LabelHostname,
							},
						}},
					}},
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: config.ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule},
					},
					NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
					Containers: []corev1.Container{{
						Name:            CoreDNSName,
						Image:           image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Resources: corev1.ResourceRequirements{
							Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
							Requests: corev1.ResourceList{
								corev1.ResourceCPU:    resource.MustParse("100m"),
								corev1.ResourceMemory: resource.MustParse("70Mi"),
							},
						},
						Args:         []string{"-conf", "/etc/coredns/" + CorefileKey},
						VolumeMounts: []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/coredns", ReadOnly: true}},
						Ports: []corev1.ContainerPort{
							{ContainerPort: 53, Name: "dns", Protocol: corev1.ProtocolUDP},
							{ContainerPort: 53, Name: "dns-tcp", Protocol: corev1.ProtocolTCP},
							{ContainerPort: 9153, Name: "metrics", Protocol: corev1.ProtocolTCP},
							{ContainerPort: 8080, Name: "liveness-probe", Protocol: corev1.ProtocolTCP},
							{ContainerPort: 8181, Name: "readiness-probe", Protocol: corev1.ProtocolTCP},
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
								Path: "/health", Port: intstr.FromString("liveness-probe"), Scheme: corev1.URISchemeHTTP,
							}},
							InitialDelaySeconds: 60, TimeoutSeconds: 5, SuccessThreshold: 1, FailureThreshold: 5,
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
								Path: "/ready", Port: intstr.FromString("readiness-probe"), Scheme: corev1.URISchemeHTTP,
							}},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities: &corev1.Capabilities{
								Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"ALL"},
							},
							ReadOnlyRootFilesystem: ptr.To(true),
						},
					}},
					// The node's resolvers, not the cluster's: CoreDNS is the cluster's.
					DNSPolicy: corev1.DNSDefault,
					Volumes: []corev1.Volume{{
						Name: "config-volume",
						VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: CoreDNSName},
							Items:                []corev1.KeyToPath{{Key: CorefileKey, Path: CorefileKey}},
						}},
					}},
				},
			},
		},
	}
}
