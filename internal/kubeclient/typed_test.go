package kubeclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// TestTypedClientPaths sends one request of each shape through the real client to a recording
// server: each resource's URL (core under /api, named groups under /apis, cluster-scoped without a
// namespace), the approval subresource, /version, and the decoded answers.
func TestTypedClientPaths(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		var obj any
		switch r.URL.Path {
		case "/version":
			obj = map[string]string{"gitVersion": "v1.37.2", "major": "1", "minor": "37"}
		case "/api/v1/namespaces/kube-system/configmaps/kubeadm-config":
			obj = &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config"}, Data: map[string]string{"k": "v"}}
		case "/api/v1/nodes":
			obj = &corev1.NodeList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "NodeList"}, Items: []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "cp-1"}}}}
		default:
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			obj = body
		}
		_ = json.NewEncoder(w).Encode(obj)
	}))
	defer srv.Close()

	c, err := FromRESTConfig(jsonConfig(srv.URL), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cm, err := c.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil || cm.Data["k"] != "v" {
		t.Fatalf("get ConfigMap: %v %v", cm, err)
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 || nodes.Items[0].Name != "cp-1" {
		t.Fatalf("list Nodes: %v %v", nodes, err)
	}
	if _, err := c.AppsV1().Deployments("kube-system").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().ClusterRoles().Patch(ctx, "system:coredns", "application/apply-patch+yaml", []byte(`{}`), metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		t.Fatal(err)
	}
	csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "csr-1"}}
	if _, err := c.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, "csr-1", csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoordinationV1().Leases("kube-node-lease").Delete(ctx, "cp-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := c.Discovery().ServerVersion()
	if err != nil || v.GitVersion != "v1.37.2" {
		t.Fatalf("server version: %v %v", v, err)
	}
	want := []string{
		"GET /api/v1/namespaces/kube-system/configmaps/kubeadm-config",
		"GET /api/v1/nodes",
		"POST /apis/apps/v1/namespaces/kube-system/deployments",
		"PATCH /apis/rbac.authorization.k8s.io/v1/clusterroles/system:coredns",
		"PUT /apis/certificates.k8s.io/v1/certificatesigningrequests/csr-1/approval",
		"DELETE /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/cp-1",
		"GET /version",
	}
	if !slices.Equal(got, want) {
		t.Errorf("requests:\n%q\nwant\n%q", got, want)
	}
}

// TestSchemeKnowsAppliedKinds: Apply names every object it sends by the scheme's kind, so the
// scheme must hold each group kubestrap writes, and nothing it does not (it is kept small on
// purpose).
func TestSchemeKnowsAppliedKinds(t *testing.T) {
	for _, obj := range []runtime.Object{&corev1.ConfigMap{}, &corev1.Secret{}, &appsv1.DaemonSet{}, &certificatesv1.CertificateSigningRequest{}} {
		if kind, _, err := ApplyConfiguration(obj); err != nil || kind == "" {
			t.Errorf("%T: %q %v", obj, kind, err)
		}
	}
	if got := len(Scheme.AllKnownTypes()); got > 200 {
		t.Errorf("the scheme holds %d types: more groups than kubestrap uses were added", got)
	}
}

// TestListWatchSelects: the ListerWatcher sends its field selector on list and watch.
func TestListWatchSelects(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Query().Get("fieldSelector"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&certificatesv1.CertificateSigningRequestList{TypeMeta: metav1.TypeMeta{APIVersion: "certificates.k8s.io/v1", Kind: "CertificateSigningRequestList"}})
	}))
	defer srv.Close()
	c, err := FromRESTConfig(jsonConfig(srv.URL), Options{})
	if err != nil {
		t.Fatal(err)
	}
	lw := ListWatch(c, c.CertificatesV1().CertificateSigningRequests(), "metadata.name=csr-1")
	if _, err := lw.(cache.ListerWithContext).ListWithContext(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(queries, []string{"metadata.name=csr-1"}) {
		t.Errorf("field selectors sent: %q", queries)
	}
}

// jsonConfig asks for JSON: the recording servers speak no protobuf.
func jsonConfig(host string) *rest.Config {
	rc := &rest.Config{Host: host}
	rc.ContentType = "application/json"
	return rc
}
