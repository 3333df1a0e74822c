package addons

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/testfixture"
)

type noHost struct{}

func (noHost) Hostname() (string, error) {
	return "", fmt.Errorf("the test configuration names the node")
}
func (noHost) DefaultIPv4() (net.IP, error) {
	return nil, fmt.Errorf("the test configuration sets the address")
}

// kubeadmObjects reads the objects upstream kubeadm v1.37.2 printed for
// "init phase addon all --dry-run" (testdata/kubeadm/README.md says how it was made): each
// follows a "[dryrun] Attached object:" line and ends before the next "[" line.
func kubeadmObjects(t *testing.T) map[string]runtime.Object {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testfixture.KubeadmDir(), "addon-all-dry-run.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	var cur *strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "[dryrun] Attached object:":
			cur = &strings.Builder{}
			docs = append(docs, "")
		case strings.HasPrefix(line, "["):
			if cur != nil {
				docs[len(docs)-1] = cur.String()
			}
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil {
		docs[len(docs)-1] = cur.String()
	}
	out := map[string]runtime.Object{}
	for _, d := range docs {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(d), nil, nil)
		if err != nil {
			t.Fatalf("decode kubeadm's object: %v\n%s", err, d)
		}
		out[key(t, obj)] = obj
	}
	return out
}

func key(t *testing.T, obj runtime.Object) string {
	t.Helper()
	acc, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%T %s/%s", obj, acc.GetNamespace(), acc.GetName())
}

// TestSameObjectsAsKubeadm compares every object kubestrap's addon phases apply with the one
// upstream kubeadm creates for the same configuration (testdata/kubeadm/addon-config.yaml: pod
// subnet set, a KubeProxyConfiguration document choosing nftables). The differences, each
// undone below before comparing, are:
//
//   - apiVersion/kind: kubeadm's printed objects carry them; kubestrap's typed objects get them
//     from the scheme when applied.
//   - Service kube-dns: kubeadm sets resourceVersion "0" so that its update path works on an old
//     Service; a server-side apply needs no resourceVersion. kubeadm also prints an empty status.
//   - DaemonSet and Deployment status: kubeadm prints zero status; an apply never sends status.
//   - kube-proxy's kubeconfig.conf: kubeadm fills a text template, kubestrap writes the same
//     kubeconfig with client-go's clientcmd; compared after parsing both.
//
// Not visible here: kubeadm creates these objects with create-or-update; kubestrap applies them
// as field manager kubestrap and creates the Corefile, CoreDNS's replicas and its resources only
// once (see ensure.go). kubeadm v1.37.2 creates no PodDisruptionBudget for CoreDNS, and neither
// does kubestrap.
func TestSameObjectsAsKubeadm(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadInit(filepath.Join(testfixture.KubeadmDir(), "addon-config.yaml"), config.Overrides{}, noHost{})
	if err != nil {
		t.Fatal(err)
	}
	dns, err := CoreDNSObjects(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := KubeProxyObjects(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]runtime.Object{}
	for _, obj := range append(dns.List(), proxy.List()...) {
		ours[key(t, obj)] = obj.DeepCopyObject()
	}
	theirs := kubeadmObjects(t)

	for k, want := range theirs {
		got, ok := ours[k]
		if !ok {
			t.Errorf("kubeadm creates %s, kubestrap does not", k)
			continue
		}
		want = want.DeepCopyObject()
		want.GetObjectKind().SetGroupVersionKind(got.GetObjectKind().GroupVersionKind())
		switch w := want.(type) {
		case *corev1.Service:
			w.ResourceVersion = ""
			w.Status = corev1.ServiceStatus{}
		case *corev1.ConfigMap:
			if w.Name == KubeProxyName {
				g := got.(*corev1.ConfigMap)
				sameKubeconfig(t, g.Data[KubeProxyKubeconfigKey], w.Data[KubeProxyKubeconfigKey])
				w.Data[KubeProxyKubeconfigKey] = g.Data[KubeProxyKubeconfigKey]
				sameProxyConfig(t, g.Data[KubeProxyConfigKey], w.Data[KubeProxyConfigKey])
			}
		}
		clearStatus(want)
		if !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("%s differs from kubeadm's (-kubestrap +kubeadm):\n%s", k, cmp.Diff(got, want))
		}
	}
	for k := range ours {
		if _, ok := theirs[k]; !ok {
			t.Errorf("kubestrap creates %s, kubeadm does not", k)
		}
	}
}

func clearStatus(obj runtime.Object) {
	switch o := obj.(type) {
	case *appsv1.DaemonSet:
		o.Status = appsv1.DaemonSetStatus{}
	case *appsv1.Deployment:
		o.Status = appsv1.DeploymentStatus{}
	}
}

func sameKubeconfig(t *testing.T, got, want string) {
	t.Helper()
	g, err := clientcmd.Load([]byte(got))
	if err != nil {
		t.Fatalf("kubestrap's kubeconfig.conf: %v", err)
	}
	w, err := clientcmd.Load([]byte(want))
	if err != nil {
		t.Fatalf("kubeadm's kubeconfig.conf: %v", err)
	}
	if !equality.Semantic.DeepEqual(g, w) {
		t.Errorf("kube-proxy's kubeconfig.conf differs from kubeadm's (-kubestrap +kubeadm):\n%s", cmp.Diff(g, w))
	}
}

// sameProxyConfig compares config.conf as text first (kube-proxy reads the text), and as
// objects when the text differs, to say which field.
func sameProxyConfig(t *testing.T, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	var g, w kubeproxyv1alpha1.KubeProxyConfiguration
	if err := yaml.UnmarshalStrict([]byte(got), &g); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	t.Errorf("config.conf differs from kubeadm's as text; as objects (-kubestrap +kubeadm):\n%s", cmp.Diff(g, w))
}
