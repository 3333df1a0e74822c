package kubeclient

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/gentype"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
)

// Why kubestrap has its own client interface instead of client-go's kubernetes.Interface: that
// clientset links a typed client for every API group and registers every group's types in
// client-go's global scheme at start-up, in every process that links it. In the CLI that was the
// largest part of each command's start-up (about 5 ms and 10 MB of its peak RSS, measured with
// and without it), paid by `kubestrap version` as much as by `join`. kubestrap talks to six API
// groups; Interface is exactly those, built from client-go's own generic typed client
// (k8s.io/client-go/gentype) over a scheme that holds only them. Its methods have the
// signatures of client-go's generated clients, so call sites read the same, and a client-go
// clientset (the fake one in tests) adapts to it in package kubeclienttest.

// Scheme holds the API groups kubestrap reads and writes; Codecs and ParameterCodec are built on it.
var (
	Scheme         = runtime.NewScheme()
	Codecs         = serializer.NewCodecFactory(Scheme)
	ParameterCodec = runtime.NewParameterCodec(Scheme)
)

func init() {
	utilruntime.Must(corev1.AddToScheme(Scheme))
	utilruntime.Must(rbacv1.AddToScheme(Scheme))
	utilruntime.Must(appsv1.AddToScheme(Scheme))
	utilruntime.Must(certificatesv1.AddToScheme(Scheme))
	utilruntime.Must(coordinationv1.AddToScheme(Scheme))
	utilruntime.Must(discoveryv1.AddToScheme(Scheme))
	// The option types (GetOptions, ListOptions, ...) as query parameters, as client-go's
	// scheme registers them.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
}

// Interface is the Kubernetes API as kubestrap uses it.
type Interface interface {
	CoreV1() CoreV1
	RbacV1() RbacV1
	AppsV1() AppsV1
	CertificatesV1() CertificatesV1
	CoordinationV1() CoordinationV1
	DiscoveryV1() DiscoveryV1
	Discovery() Discovery
}

// Resource is a typed client of one kind of object (T a pointer to it, L to its list), with the
// methods and signatures of client-go's generated clients.
type Resource[T, L any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// CoreV1 is the core API group's resources kubestrap uses.
type CoreV1 interface {
	ConfigMaps(namespace string) Resource[*corev1.ConfigMap, *corev1.ConfigMapList]
	Secrets(namespace string) Resource[*corev1.Secret, *corev1.SecretList]
	ServiceAccounts(namespace string) Resource[*corev1.ServiceAccount, *corev1.ServiceAccountList]
	Services(namespace string) Resource[*corev1.Service, *corev1.ServiceList]
	Endpoints(namespace string) Resource[*corev1.Endpoints, *corev1.EndpointsList] //nolint:staticcheck // kubeadm's reset reads them too
	Pods(namespace string) Resource[*corev1.Pod, *corev1.PodList]
	Events(namespace string) Resource[*corev1.Event, *corev1.EventList]
	Nodes() Resource[*corev1.Node, *corev1.NodeList]
	Namespaces() Resource[*corev1.Namespace, *corev1.NamespaceList]
}

// RbacV1 is rbac.authorization.k8s.io/v1.
type RbacV1 interface {
	Roles(namespace string) Resource[*rbacv1.Role, *rbacv1.RoleList]
	RoleBindings(namespace string) Resource[*rbacv1.RoleBinding, *rbacv1.RoleBindingList]
	ClusterRoles() Resource[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList]
	ClusterRoleBindings() Resource[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList]
}

// AppsV1 is apps/v1.
type AppsV1 interface {
	Deployments(namespace string) Resource[*appsv1.Deployment, *appsv1.DeploymentList]
	DaemonSets(namespace string) Resource[*appsv1.DaemonSet, *appsv1.DaemonSetList]
}

// CertificatesV1 is certificates.k8s.io/v1.
type CertificatesV1 interface {
	CertificateSigningRequests() CertificateSigningRequests
}

// CertificateSigningRequests adds the approval subresource to the CSR client.
type CertificateSigningRequests interface {
	Resource[*certificatesv1.CertificateSigningRequest, *certificatesv1.CertificateSigningRequestList]
	UpdateApproval(ctx context.Context, name string, csr *certificatesv1.CertificateSigningRequest, opts metav1.UpdateOptions) (*certificatesv1.CertificateSigningRequest, error)
}

// CoordinationV1 is coordination.k8s.io/v1.
type CoordinationV1 interface {
	Leases(namespace string) Resource[*coordinationv1.Lease, *coordinationv1.LeaseList]
}

// DiscoveryV1 is discovery.k8s.io/v1.
type DiscoveryV1 interface {
	EndpointSlices(namespace string) Resource[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList]
}

// Discovery is the server's own information: its version, and a raw client for unversioned paths.
type Discovery interface {
	ServerVersion() (*version.Info, error)
	RESTClient() rest.Interface
}

// NewForConfig builds an Interface from c, which it does not change. Like client-go's clientset,
// all groups share one HTTP client (one connection pool) and one client-side rate limiter.
func NewForConfig(c *rest.Config) (Interface, error) {
	cfg := *c
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("client configuration: burst must be above 0 when QPS is set")
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	httpClient, err := rest.HTTPClientFor(&cfg)
	if err != nil {
		return nil, err
	}
	cs := &clientset{}
	for _, g := range []struct {
		gv     schema.GroupVersion
		prefix string
		out    *rest.Interface
	}{
		{corev1.SchemeGroupVersion, "/api", &cs.core},
		{rbacv1.SchemeGroupVersion, "/apis", &cs.rbac},
		{appsv1.SchemeGroupVersion, "/apis", &cs.apps},
		{certificatesv1.SchemeGroupVersion, "/apis", &cs.certificates},
		{coordinationv1.SchemeGroupVersion, "/apis", &cs.coordination},
		{discoveryv1.SchemeGroupVersion, "/apis", &cs.discovery},
	} {
		gc := cfg
		gv := g.gv
		gc.GroupVersion, gc.APIPath = &gv, g.prefix
		gc.NegotiatedSerializer = Codecs.WithoutConversion()
		rc, err := rest.RESTClientForConfigAndClient(&gc, httpClient)
		if err != nil {
			return nil, fmt.Errorf("client for %s: %w", gv, err)
		}
		*g.out = rc
	}
	uc := cfg
	uc.GroupVersion, uc.APIPath = nil, ""
	uc.NegotiatedSerializer = Codecs.WithoutConversion()
	if cs.unversioned, err = rest.UnversionedRESTClientForConfigAndClient(&uc, httpClient); err != nil {
		return nil, fmt.Errorf("client for the server's unversioned paths: %w", err)
	}
	return cs, nil
}

type clientset struct {
	core, rbac, apps, certificates, coordination, discovery, unversioned rest.Interface
}

func (c *clientset) CoreV1() CoreV1                 { return coreV1{c.core} }
func (c *clientset) RbacV1() RbacV1                 { return rbacV1{c.rbac} }
func (c *clientset) AppsV1() AppsV1                 { return appsV1{c.apps} }
func (c *clientset) CertificatesV1() CertificatesV1 { return certificatesV1{c.certificates} }
func (c *clientset) CoordinationV1() CoordinationV1 { return coordinationV1{c.coordination} }
func (c *clientset) DiscoveryV1() DiscoveryV1       { return discoveryV1{c.discovery} }
func (c *clientset) Discovery() Discovery           { return discovery{c.unversioned} }

// resource builds the generic typed client client-go's generated clients are made of; namespace
// "" is a cluster-scoped kind (or all namespaces).
func resource[T interface {
	*E
	runtime.Object
	metav1.Object
}, L interface {
	*LE
	runtime.Object
}, E, LE any](c rest.Interface, plural, namespace string) *gentype.ClientWithList[T, L] {
	return gentype.NewClientWithList[T, L](plural, c, ParameterCodec, namespace,
		func() T { return T(new(E)) }, func() L { return L(new(LE)) }, gentype.PrefersProtobuf[T]())
}

type coreV1 struct{ c rest.Interface }

func (g coreV1) ConfigMaps(ns string) Resource[*corev1.ConfigMap, *corev1.ConfigMapList] {
	return resource[*corev1.ConfigMap, *corev1.ConfigMapList](g.c, "configmaps", ns)
}
func (g coreV1) Secrets(ns string) Resource[*corev1.Secret, *corev1.SecretList] {
	return resource[*corev1.Secret, *corev1.SecretList](g.c, "secrets", ns)
}
func (g coreV1) ServiceAccounts(ns string) Resource[*corev1.ServiceAccount, *corev1.ServiceAccountList] {
	return resource[*corev1.ServiceAccount, *corev1.ServiceAccountList](g.c, "serviceaccounts", ns)
}
func (g coreV1) Services(ns string) Resource[*corev1.Service, *corev1.ServiceList] {
	return resource[*corev1.Service, *corev1.ServiceList](g.c, "services", ns)
}

//nolint:staticcheck // Endpoints: see CoreV1
func (g coreV1) Endpoints(ns string) Resource[*corev1.Endpoints, *corev1.EndpointsList] {
	return resource[*corev1.Endpoints, *corev1.EndpointsList](g.c, "endpoints", ns)
}
func (g coreV1) Pods(ns string) Resource[*corev1.Pod, *corev1.PodList] {
	return resource[*corev1.Pod, *corev1.PodList](g.c, "pods", ns)
}
func (g coreV1) Events(ns string) Resource[*corev1.Event, *corev1.EventList] {
	return resource[*corev1.Event, *corev1.EventList](g.c, "events", ns)
}
func (g coreV1) Nodes() Resource[*corev1.Node, *corev1.NodeList] {
	return resource[*corev1.Node, *corev1.NodeList](g.c, "nodes", "")
}
func (g coreV1) Namespaces() Resource[*corev1.Namespace, *corev1.NamespaceList] {
	return resource[*corev1.Namespace, *corev1.NamespaceList](g.c, "namespaces", "")
}

type rbacV1 struct{ c rest.Interface }

func (g rbacV1) Roles(ns string) Resource[*rbacv1.Role, *rbacv1.RoleList] {
	return resource[*rbacv1.Role, *rbacv1.RoleList](g.c, "roles", ns)
}
func (g rbacV1) RoleBindings(ns string) Resource[*rbacv1.RoleBinding, *rbacv1.RoleBindingList] {
	return resource[*rbacv1.RoleBinding, *rbacv1.RoleBindingList](g.c, "rolebindings", ns)
}
func (g rbacV1) ClusterRoles() Resource[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList] {
	return resource[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList](g.c, "clusterroles", "")
}
func (g rbacV1) ClusterRoleBindings() Resource[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList] {
	return resource[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList](g.c, "clusterrolebindings", "")
}

type appsV1 struct{ c rest.Interface }

func (g appsV1) Deployments(ns string) Resource[*appsv1.Deployment, *appsv1.DeploymentList] {
	return resource[*appsv1.Deployment, *appsv1.DeploymentList](g.c, "deployments", ns)
}
func (g appsV1) DaemonSets(ns string) Resource[*appsv1.DaemonSet, *appsv1.DaemonSetList] {
	return resource[*appsv1.DaemonSet, *appsv1.DaemonSetList](g.c, "daemonsets", ns)
}

type certificatesV1 struct{ c rest.Interface }

func (g certificatesV1) CertificateSigningRequests() CertificateSigningRequests {
	return csrs{resource[*certificatesv1.CertificateSigningRequest, *certificatesv1.CertificateSigningRequestList](g.c, "certificatesigningrequests", "")}
}

type csrs struct {
	*gentype.ClientWithList[*certificatesv1.CertificateSigningRequest, *certificatesv1.CertificateSigningRequestList]
}

// UpdateApproval writes csr's Approved or Denied condition through the approval subresource, the
// only way the API accepts one.
func (c csrs) UpdateApproval(ctx context.Context, name string, csr *certificatesv1.CertificateSigningRequest, opts metav1.UpdateOptions) (*certificatesv1.CertificateSigningRequest, error) {
	out := &certificatesv1.CertificateSigningRequest{}
	err := c.GetClient().Put().UseProtobufAsDefault().Resource("certificatesigningrequests").Name(name).
		SubResource("approval").VersionedParams(&opts, ParameterCodec).Body(csr).Do(ctx).Into(out)
	return out, err
}

type coordinationV1 struct{ c rest.Interface }

func (g coordinationV1) Leases(ns string) Resource[*coordinationv1.Lease, *coordinationv1.LeaseList] {
	return resource[*coordinationv1.Lease, *coordinationv1.LeaseList](g.c, "leases", ns)
}

type discoveryV1 struct{ c rest.Interface }

func (g discoveryV1) EndpointSlices(ns string) Resource[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList] {
	return resource[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList](g.c, "endpointslices", ns)
}

type discovery struct{ c rest.Interface }

func (d discovery) RESTClient() rest.Interface { return d.c }

// ServerVersion reads /version, as client-go's discovery client does.
func (d discovery) ServerVersion() (*version.Info, error) {
	body, err := d.c.Get().AbsPath("/version").Do(context.TODO()).Raw()
	if err != nil {
		return nil, err
	}
	var info version.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("unable to parse the server version: %w", err)
	}
	return &info, nil
}

// ListWatch is r as the ListerWatcher client-go's informers and watch tools take, limited to the
// objects fieldSelector matches ("" for all). c is the client r came from: the reflector asks it
// whether a watch can stream its initial list (client-go's fake cannot), as the informer
// factory's generated informers ask their clientset.
func ListWatch[T, L runtime.Object](c Interface, r Resource[T, L], fieldSelector string) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fieldSelector
			return r.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fieldSelector
			return r.Watch(ctx, o)
		},
	}, c)
}
