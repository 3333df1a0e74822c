package kubeclient

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestApplyConfigurationHoldsOnlyWhatIsSet(t *testing.T) {
	kind, data, err := ApplyConfiguration(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.10"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if kind != "Service" {
		t.Errorf("kind = %q", kind)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "kube-dns", "namespace": "kube-system"},
		"spec":     map[string]any{"clusterIP": "10.96.0.10"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("applied configuration = %s\nwant no status, no nulls, apiVersion and kind set: %v", data, want)
	}
}
