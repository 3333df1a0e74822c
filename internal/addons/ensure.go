package addons

import (
	"context"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// Who owns what. Every object is server-side applied as kubeclient.FieldManager with the fields
// below, on every run (init, a re-run, a later upgrade); a field kubestrap does not apply is the
// user's, and nothing kubestrap does removes or resets it. Two kinds of value are kubestrap's
// only when it creates the object (a plain create, never applied again), because they are the
// ones operators tune and kubeadm's overwriting them is a long-standing complaint
// (kubernetes/kubeadm#3033, kubernetes/kubernetes#96833):
//
//   - the coredns ConfigMap (the Corefile): created once, then the user's;
//   - the coredns Deployment's replicas and its container's resources: set at creation, then the
//     user's (kubectl scale, kubectl edit, an autoscaler).
//
// kube-proxy's DaemonSet sets no resources at all, so a user's are never touched; its ConfigMap
// is kubestrap's (both keys), because its source of truth is the KubeProxyConfiguration document
// of the configuration file: change that and re-run "kubestrap init phase addon kube-proxy".

// EnsureCoreDNS creates or updates CoreDNS's objects (see above for what a re-run leaves alone).
func EnsureCoreDNS(ctx context.Context, c kubeclient.Interface, o *CoreDNS) error {
	if err := kubeclient.Apply(ctx, c.CoreV1().ServiceAccounts(o.ServiceAccount.Namespace), o.ServiceAccount); err != nil {
		return err
	}
	if err := kubeclient.Apply(ctx, c.RbacV1().ClusterRoles(), o.ClusterRole); err != nil {
		return err
	}
	if err := bootstrap.ApplyClusterRoleBinding(ctx, c, o.ClusterRoleBinding); err != nil {
		return err
	}
	if _, err := c.CoreV1().ConfigMaps(o.ConfigMap.Namespace).Create(ctx, o.ConfigMap, metav1.CreateOptions{FieldManager: kubeclient.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ConfigMap %s/%s: %w", o.ConfigMap.Namespace, o.ConfigMap.Name, err)
	}
	deployments := c.AppsV1().Deployments(o.Deployment.Namespace)
	if _, err := deployments.Create(ctx, o.Deployment, metav1.CreateOptions{FieldManager: kubeclient.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Deployment %s/%s: %w", o.Deployment.Namespace, o.Deployment.Name, err)
	}
	if err := kubeclient.Apply(ctx, deployments, OwnedDeployment(o.Deployment)); err != nil {
		return err
	}
	return kubeclient.Apply(ctx, c.CoreV1().Services(o.Service.Namespace), o.Service)
}

// OwnedDeployment is d without the fields that are kubestrap's only at creation: replicas and
// the containers' resources.
func OwnedDeployment(d *appsv1.Deployment) *appsv1.Deployment {
	out := d.DeepCopy()
	out.Spec.Replicas = nil
	for i := range out.Spec.Template.Spec.Containers {
		out.Spec.Template.Spec.Containers[i].Resources = corev1.ResourceRequirements{}
	}
	return out
}

// EnsureKubeProxy applies kube-proxy's objects.
func EnsureKubeProxy(ctx context.Context, c kubeclient.Interface, o *KubeProxy) error {
	sys := metav1.NamespaceSystem
	if err := kubeclient.Apply(ctx, c.CoreV1().ServiceAccounts(sys), o.ServiceAccount); err != nil {
		return err
	}
	if err := bootstrap.ApplyClusterRoleBinding(ctx, c, o.ClusterRoleBinding); err != nil {
		return err
	}
	if err := kubeclient.Apply(ctx, c.RbacV1().Roles(sys), o.Role); err != nil {
		return err
	}
	if err := kubeclient.Apply(ctx, c.RbacV1().RoleBindings(sys), o.RoleBinding); err != nil {
		return err
	}
	if err := kubeclient.Apply(ctx, c.CoreV1().ConfigMaps(sys), o.ConfigMap); err != nil {
		return err
	}
	return kubeclient.Apply(ctx, c.AppsV1().DaemonSets(sys), o.DaemonSet)
}

// List returns the objects in the order Ensure writes them.
func (o *CoreDNS) List() []runtime.Object {
	return []runtime.Object{o.ServiceAccount, o.ClusterRole, o.ClusterRoleBinding, o.ConfigMap, o.Deployment, o.Service}
}

// List returns the objects in the order Ensure writes them.
func (o *KubeProxy) List() []runtime.Object {
	return []runtime.Object{o.ServiceAccount, o.ClusterRoleBinding, o.Role, o.RoleBinding, o.ConfigMap, o.DaemonSet}
}

// Print writes objs as a YAML stream, each as it would be applied (apiVersion and kind set, no
// status): what a dry run shows.
func Print(w io.Writer, objs []runtime.Object) error {
	for _, obj := range objs {
		_, data, err := kubeclient.ApplyConfiguration(obj)
		if err != nil {
			return err
		}
		b, err := yaml.JSONToYAML(data)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "---\n%s", b); err != nil {
			return err
		}
	}
	return nil
}
