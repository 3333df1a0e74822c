// Package bootstrap owns the cluster objects that make a new control plane joinable and usable,
// as kubeadm creates them (reference §3 and §5): the admin ClusterRoleBinding, bootstrap-token
// Secrets and their RBAC, the CSR auto-approval bindings, the kube-public/cluster-info ConfigMap
// and the uploaded kubeadm-config and kubelet-config ConfigMaps. Every write is a server-side
// apply as kubeclient.FieldManager, so re-running init converges instead of failing and keeps
// fields others set.
package bootstrap

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// Names of the objects, as kubeadm v1.37.2 names them, so kubeadm's tooling finds them.
const (
	ClusterAdminsGroup          = "kubeadm:cluster-admins"
	NodeBootstrapTokenAuthGroup = "system:bootstrappers:kubeadm:default-node-token"
	NodesGroup                  = "system:nodes"

	KubeadmConfigConfigMap = "kubeadm-config"
	KubeletConfigConfigMap = "kubelet-config"
	ClusterConfigKey       = "ClusterConfiguration"
	KubeletConfigKey       = "kubelet"
)

// EnsureAdminBinding binds admin.conf's group kubeadm:cluster-admins to cluster-admin; until it
// exists admin.conf has no rights, which is why the caller uses super-admin.conf for it.
func EnsureAdminBinding(ctx context.Context, c kubeclient.Interface) error {
	return ApplyClusterRoleBinding(ctx, c, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterAdminsGroup},
		RoleRef:    clusterRole("cluster-admin"),
		Subjects:   []rbacv1.Subject{group(ClusterAdminsGroup)},
	})
}

// EnsureNodeBootstrapRBAC lets bootstrap tokens post CSRs, read Nodes, and get their client
// certificates approved automatically; lets nodes renew theirs; and lets the apiserver reach
// kubelets.
func EnsureNodeBootstrapRBAC(ctx context.Context, c kubeclient.Interface) error {
	if err := applyClusterRole(ctx, c, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:get-nodes"},
		Rules: []rbacv1.PolicyRule{{
			Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"nodes"},
		}},
	}); err != nil {
		return err
	}
	bindings := []*rbacv1.ClusterRoleBinding{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:kubelet-bootstrap"},
			RoleRef:    clusterRole("system:node-bootstrapper"),
			Subjects:   []rbacv1.Subject{group(NodeBootstrapTokenAuthGroup)},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:get-nodes"},
			RoleRef:    clusterRole("kubeadm:get-nodes"),
			Subjects:   []rbacv1.Subject{group(NodeBootstrapTokenAuthGroup)},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:node-autoapprove-bootstrap"},
			RoleRef:    clusterRole("system:certificates.k8s.io:certificatesigningrequests:nodeclient"),
			Subjects:   []rbacv1.Subject{group(NodeBootstrapTokenAuthGroup)},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:node-autoapprove-certificate-rotation"},
			RoleRef:    clusterRole("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"),
			Subjects:   []rbacv1.Subject{group(NodesGroup)},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:apiserver-kubelet-client"},
			RoleRef:    clusterRole("system:kubelet-api-admin"),
			Subjects: []rbacv1.Subject{{
				Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "kube-apiserver-kubelet-client",
			}},
		},
	}
	for _, b := range bindings {
		if err := ApplyClusterRoleBinding(ctx, c, b); err != nil {
			return err
		}
	}
	return nil
}

// EnsureClusterInfo publishes the cluster's endpoint and CA in kube-public/cluster-info, readable
// anonymously; the controller-manager's bootstrapsigner adds a JWS signature per token, which is
// what lets a joining node trust it.
func EnsureClusterInfo(ctx context.Context, c kubeclient.Interface, kubeconfig []byte) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.ConfigMapClusterInfo, Namespace: metav1.NamespacePublic},
		Data:       map[string]string{bootstrapapi.KubeConfigKey: string(kubeconfig)},
	}
	if err := applyConfigMapKeys(ctx, c, cm); err != nil {
		return err
	}
	const name = "kubeadm:bootstrap-signer-clusterinfo"
	if err := applyRole(ctx, c, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespacePublic},
		Rules: []rbacv1.PolicyRule{{
			Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{bootstrapapi.ConfigMapClusterInfo},
		}},
	}); err != nil {
		return err
	}
	return applyRoleBinding(ctx, c, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespacePublic},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:anonymous"}},
	})
}

// UploadClusterConfig stores the ClusterConfiguration in kube-system/kubeadm-config, readable by
// joining and joined nodes.
func UploadClusterConfig(ctx context.Context, c kubeclient.Interface, clusterConfig []byte) error {
	return uploadReadableConfigMap(ctx, c, KubeadmConfigConfigMap, ClusterConfigKey, clusterConfig, "kubeadm:nodes-kubeadm-config")
}

// UploadKubeletConfig stores the KubeletConfiguration that joining nodes use in
// kube-system/kubelet-config.
func UploadKubeletConfig(ctx context.Context, c kubeclient.Interface, kubeletConfig []byte) error {
	return uploadReadableConfigMap(ctx, c, KubeletConfigConfigMap, KubeletConfigKey, kubeletConfig, "kubeadm:kubelet-config")
}

func uploadReadableConfigMap(ctx context.Context, c kubeclient.Interface, name, key string, data []byte, roleName string) error {
	if err := applyConfigMapKeys(ctx, c, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{key: string(data)},
	}); err != nil {
		return err
	}
	if err := applyRole(ctx, c, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: roleName, Namespace: metav1.NamespaceSystem},
		Rules: []rbacv1.PolicyRule{{
			Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{name},
		}},
	}); err != nil {
		return err
	}
	return applyRoleBinding(ctx, c, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: roleName, Namespace: metav1.NamespaceSystem},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName},
		Subjects:   []rbacv1.Subject{group(NodeBootstrapTokenAuthGroup), group(NodesGroup)},
	})
}

func clusterRole(name string) rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

// The apply helpers server-side apply an object as kubeclient.FieldManager: kubestrap owns the
// fields it sets (a ConfigMap's own keys, a Role's rules, a binding's subjects) and nothing else,
// so a re-run of init converges without dropping what others added (the bootstrapsigner's
// jws-kubeconfig-* keys in cluster-info, a label a user put on a Role).

func applyConfigMapKeys(ctx context.Context, c kubeclient.Interface, cm *corev1.ConfigMap) error {
	return kubeclient.Apply(ctx, c.CoreV1().ConfigMaps(cm.Namespace), cm)
}

func applyRole(ctx context.Context, c kubeclient.Interface, r *rbacv1.Role) error {
	return kubeclient.Apply(ctx, c.RbacV1().Roles(r.Namespace), r)
}

func applyRoleBinding(ctx context.Context, c kubeclient.Interface, b *rbacv1.RoleBinding) error {
	return kubeclient.Apply(ctx, c.RbacV1().RoleBindings(b.Namespace), b)
}

func applyClusterRole(ctx context.Context, c kubeclient.Interface, r *rbacv1.ClusterRole) error {
	return kubeclient.Apply(ctx, c.RbacV1().ClusterRoles(), r)
}

// ApplyClusterRoleBinding applies b. roleRef is immutable: a binding of the same name with
// another role is someone else's, and the error says so instead of the apiserver's bare Invalid.
func ApplyClusterRoleBinding(ctx context.Context, c kubeclient.Interface, b *rbacv1.ClusterRoleBinding) error {
	api := c.RbacV1().ClusterRoleBindings()
	if cur, err := api.Get(ctx, b.Name, metav1.GetOptions{}); err == nil && cur.RoleRef != b.RoleRef {
		return fmt.Errorf("ClusterRoleBinding %s exists with roleRef %s, not %s: delete it or rename yours", b.Name, cur.RoleRef.Name, b.RoleRef.Name)
	} else if err != nil && !apierrors.IsNotFound(err) {
		return wrap("get ClusterRoleBinding", "", b.Name, err)
	}
	return kubeclient.Apply(ctx, api, b)
}

func wrap(what, ns, name string, err error) error {
	if err == nil {
		return nil
	}
	if ns != "" {
		name = ns + "/" + name
	}
	return fmt.Errorf("%s %s: %w", what, name, err)
}

// InitComplete reports whether init's last phases have run against the cluster c reaches: the
// uploaded ClusterConfiguration and the published cluster-info both exist. Any error counts as "no".
func InitComplete(ctx context.Context, c kubeclient.Interface) bool {
	if _, err := c.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, KubeadmConfigConfigMap, metav1.GetOptions{}); err != nil {
		return false
	}
	_, err := c.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	return err == nil
}
