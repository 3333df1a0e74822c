// Package kubeclienttest adapts a client-go clientset (in tests, the fake one from
// k8s.io/client-go/kubernetes/fake, with its object tracker and reactors) to kubeclient.Interface.
// It links client-go's whole clientset, which kubeclient exists to keep out of the CLI: import it
// from tests only (internal/progstore's dependency test checks the front program).
package kubeclienttest

import (
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// Wrap presents cs as a kubeclient.Interface.
func Wrap(cs kubernetes.Interface) kubeclient.Interface { return clientset{cs} }

// NewFake returns a fake clientset holding objects, as fake.NewClientset does, and the same
// clientset as a kubeclient.Interface: tests hand the second to the code under test and use the
// first for reactors and the recorded actions.
func NewFake(objects ...runtime.Object) (kubeclient.Interface, *fake.Clientset) {
	cs := fake.NewClientset(objects...)
	return Wrap(cs), cs
}

type clientset struct{ cs kubernetes.Interface }

// IsWatchListSemanticsUnSupported passes on the wrapped clientset's answer (the fake's is yes):
// client-go's reflector asks the client it is given whether a watch can stream its initial list.
func (c clientset) IsWatchListSemanticsUnSupported() bool {
	u, ok := c.cs.(interface{ IsWatchListSemanticsUnSupported() bool })
	return ok && u.IsWatchListSemanticsUnSupported()
}

func (c clientset) CoreV1() kubeclient.CoreV1 { return core{c.cs.CoreV1()} }
func (c clientset) RbacV1() kubeclient.RbacV1 { return rbac{c.cs.RbacV1()} }
func (c clientset) AppsV1() kubeclient.AppsV1 { return apps{c.cs.AppsV1()} }
func (c clientset) CertificatesV1() kubeclient.CertificatesV1 {
	return certificates{c.cs.CertificatesV1()}
}
func (c clientset) CoordinationV1() kubeclient.CoordinationV1 {
	return coordination{c.cs.CoordinationV1()}
}
func (c clientset) DiscoveryV1() kubeclient.DiscoveryV1 { return disco{c.cs.DiscoveryV1()} }
func (c clientset) Discovery() kubeclient.Discovery     { return serverInfo{c.cs} }

type core struct{ c corev1client.CoreV1Interface }

func (g core) ConfigMaps(ns string) kubeclient.Resource[*corev1.ConfigMap, *corev1.ConfigMapList] {
	return g.c.ConfigMaps(ns)
}
func (g core) Secrets(ns string) kubeclient.Resource[*corev1.Secret, *corev1.SecretList] {
	return g.c.Secrets(ns)
}
func (g core) ServiceAccounts(ns string) kubeclient.Resource[*corev1.ServiceAccount, *corev1.ServiceAccountList] {
	return g.c.ServiceAccounts(ns)
}
func (g core) Services(ns string) kubeclient.Resource[*corev1.Service, *corev1.ServiceList] {
	return g.c.Services(ns)
}

//nolint:staticcheck // Endpoints: see kubeclient.CoreV1
func (g core) Endpoints(ns string) kubeclient.Resource[*corev1.Endpoints, *corev1.EndpointsList] {
	return g.c.Endpoints(ns)
}
func (g core) Pods(ns string) kubeclient.Resource[*corev1.Pod, *corev1.PodList] { return g.c.Pods(ns) }
func (g core) Events(ns string) kubeclient.Resource[*corev1.Event, *corev1.EventList] {
	return g.c.Events(ns)
}
func (g core) Nodes() kubeclient.Resource[*corev1.Node, *corev1.NodeList] { return g.c.Nodes() }
func (g core) Namespaces() kubeclient.Resource[*corev1.Namespace, *corev1.NamespaceList] {
	return g.c.Namespaces()
}

type rbac struct{ c rbacv1client.RbacV1Interface }

func (g rbac) Roles(ns string) kubeclient.Resource[*rbacv1.Role, *rbacv1.RoleList] {
	return g.c.Roles(ns)
}
func (g rbac) RoleBindings(ns string) kubeclient.Resource[*rbacv1.RoleBinding, *rbacv1.RoleBindingList] {
	return g.c.RoleBindings(ns)
}
func (g rbac) ClusterRoles() kubeclient.Resource[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList] {
	return g.c.ClusterRoles()
}
func (g rbac) ClusterRoleBindings() kubeclient.Resource[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList] {
	return g.c.ClusterRoleBindings()
}

type apps struct{ c appsv1client.AppsV1Interface }

func (g apps) Deployments(ns string) kubeclient.Resource[*appsv1.Deployment, *appsv1.DeploymentList] {
	return g.c.Deployments(ns)
}
func (g apps) DaemonSets(ns string) kubeclient.Resource[*appsv1.DaemonSet, *appsv1.DaemonSetList] {
	return g.c.DaemonSets(ns)
}

type certificates struct {
	c certificatesv1client.CertificatesV1Interface
}

func (g certificates) CertificateSigningRequests() kubeclient.CertificateSigningRequests {
	return g.c.CertificateSigningRequests()
}

type coordination struct {
	c coordinationv1client.CoordinationV1Interface
}

func (g coordination) Leases(ns string) kubeclient.Resource[*coordinationv1.Lease, *coordinationv1.LeaseList] {
	return g.c.Leases(ns)
}

type disco struct {
	c discoveryv1client.DiscoveryV1Interface
}

func (g disco) EndpointSlices(ns string) kubeclient.Resource[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList] {
	return g.c.EndpointSlices(ns)
}

type serverInfo struct{ cs kubernetes.Interface }

func (s serverInfo) ServerVersion() (*version.Info, error) { return s.cs.Discovery().ServerVersion() }
func (s serverInfo) RESTClient() rest.Interface            { return s.cs.Discovery().RESTClient() }
