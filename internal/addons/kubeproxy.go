package addons

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
)

// kube-proxy's names, as kubeadm v1.37.2 has them.
const (
	KubeProxyName = "kube-proxy"
	// KubeProxyConfigKey and KubeProxyKubeconfigKey are the ConfigMap's keys, mounted at
	// /var/lib/kube-proxy in the pods.
	KubeProxyConfigKey     = "config.conf"
	KubeProxyKubeconfigKey = "kubeconfig.conf"
	KubeProxyBinding       = "kubeadm:node-proxier"
	kubeProxyClusterRole   = "system:node-proxier"
	kubeProxyMountDir      = "/var/lib/kube-proxy"
	// serviceAccountDir is where a pod's projected ServiceAccount token and CA are mounted.
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// KubeProxyImage is <imageRepository>/kube-proxy:<kubernetesVersion>, as kubeadm builds it; the
// bundled "kubestrap kube-proxy" is the same program, for images built from the binary.
func KubeProxyImage(cfg *config.Config) string {
	repo := cfg.Cluster.ImageRepository
	if repo == "" {
		repo = config.DefaultImageRepository
	}
	v := cfg.Cluster.KubernetesVersion
	if v == "" {
		v = config.BundledKubernetesVersion
	}
	return repo + "/" + KubeProxyName + ":" + strings.ReplaceAll(v, "+", "_")
}

// KubeProxyConfiguration is the config file's KubeProxyConfiguration document (as
// internal/config kept it) with kubeadm's defaults filled in where the document is silent: bind
// on every address of the advertise address's family, the pod subnet as clusterCIDR, the
// kubeconfig the ConfigMap mounts, and iptables mode.
func KubeProxyConfiguration(cfg *config.Config) (*kubeproxyv1alpha1.KubeProxyConfiguration, error) {
	kp := &kubeproxyv1alpha1.KubeProxyConfiguration{}
	if len(cfg.KubeProxyConfiguration) > 0 {
		if err := json.Unmarshal(cfg.KubeProxyConfiguration, kp); err != nil {
			return nil, fmt.Errorf("the KubeProxyConfiguration of the config file: %w", err)
		}
	}
	kp.APIVersion, kp.Kind = config.KubeProxyConfigAPIVer, config.KindKubeProxyConfig
	if kp.BindAddress == "" {
		kp.BindAddress = "0.0.0.0"
		if ip := net.ParseIP(cfg.Init.LocalAPIEndpoint.AdvertiseAddress); ip != nil && ip.To4() == nil {
			kp.BindAddress = "::"
		}
	}
	if kp.ClusterCIDR == "" {
		kp.ClusterCIDR = cfg.Cluster.Networking.PodSubnet
	}
	if kp.ClientConnection.Kubeconfig == "" {
		kp.ClientConnection.Kubeconfig = kubeProxyMountDir + "/" + KubeProxyKubeconfigKey
	}
	if kp.Mode == "" {
		kp.Mode = "iptables"
	}
	return kp, nil
}

// KubeProxy are kube-proxy's objects for cfg.
type KubeProxy struct {
	ServiceAccount     *corev1.ServiceAccount
	ClusterRoleBinding *rbacv1.ClusterRoleBinding
	Role               *rbacv1.Role
	RoleBinding        *rbacv1.RoleBinding
	ConfigMap          *corev1.ConfigMap
	DaemonSet          *appsv1.DaemonSet
}

// KubeProxyObjects builds kube-proxy's objects. The kubeconfig in the ConfigMap points at the
// control-plane endpoint and authenticates with the pod's own ServiceAccount token.
func KubeProxyObjects(cfg *config.Config) (*KubeProxy, error) {
	kp, err := KubeProxyConfiguration(cfg)
	if err != nil {
		return nil, err
	}
	conf, err := yaml.Marshal(kp)
	if err != nil {
		return nil, fmt.Errorf("render KubeProxyConfiguration: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["default"] = &clientcmdapi.Cluster{Server: cfg.ControlPlaneURL(), CertificateAuthority: serviceAccountDir + "/ca.crt"}
	kc.AuthInfos["default"] = &clientcmdapi.AuthInfo{TokenFile: serviceAccountDir + "/token"}
	kc.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default", Namespace: "default"}
	kc.CurrentContext = "default"
	kubeconfig, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("render kube-proxy's kubeconfig: %w", err)
	}

	sys := metav1.NamespaceSystem
	return &KubeProxy{
		ServiceAccount: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: KubeProxyName, Namespace: sys}},
		ClusterRoleBinding: &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: KubeProxyBinding},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: kubeProxyClusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: KubeProxyName, Namespace: sys}},
		},
		// Joining nodes read the ConfigMap with their bootstrap token (kubeadm's join does, to
		// learn the cluster's proxy settings).
		Role: &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: KubeProxyName, Namespace: sys},
			Rules: []rbacv1.PolicyRule{{
				Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{KubeProxyName},
			}},
		},
		RoleBinding: &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: KubeProxyName, Namespace: sys},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: KubeProxyName},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: bootstrap.NodeBootstrapTokenAuthGroup}},
		},
		ConfigMap: &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: KubeProxyName, Namespace: sys, Labels: map[string]string{"app": KubeProxyName}},
			Data: map[string]string{
				KubeProxyConfigKey:     strings.TrimSuffix(string(conf), "\n"),
				KubeProxyKubeconfigKey: strings.TrimSuffix(string(kubeconfig), "\n"),
			},
		},
		DaemonSet: kubeProxyDaemonSet(KubeProxyImage(cfg)),
	}, nil
}

func kubeProxyDaemonSet(image string) *appsv1.DaemonSet {
	labels := map[string]string{"k8s-app": KubeProxyName}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: KubeProxyName, Namespace: metav1.NamespaceSystem, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					PriorityClassName: "system-node-critical",
					Containers: []corev1.Container{{
						Name:            KubeProxyName,
						Image:           image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{
							"/usr/local/bin/kube-proxy",
							"--config=" + kubeProxyMountDir + "/" + KubeProxyConfigKey,
							"--hostname-override=$(NODE_NAME)",
						},
						// kube-proxy programs the node's packet filter.
						SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
						VolumeMounts: []corev1.VolumeMount{
							{MountPath: kubeProxyMountDir, Name: KubeProxyName},
							{MountPath: "/run/xtables.lock", Name: "xtables-lock"},
							{MountPath: "/lib/modules", Name: "lib-modules", ReadOnly: true},
						},
						Env: []corev1.EnvVar{{
							Name:      "NODE_NAME",
							ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}},
						}},
					}},
					HostNetwork:        true,
					ServiceAccountName: KubeProxyName,
					Volumes: []corev1.Volume{
						{Name: KubeProxyName, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: KubeProxyName},
						}}},
						{Name: "xtables-lock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
							Path: "/run/xtables.lock", Type: ptr.To(corev1.HostPathFileOrCreate),
						}}},
						{Name: "lib-modules", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/lib/modules"}}},
					},
					// Every node needs its Service routing, whatever its taints.
					Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
				},
			},
		},
	}
}
