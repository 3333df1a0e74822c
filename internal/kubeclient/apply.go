package kubeclient

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// FieldManager is the name kubestrap's server-side applies are recorded under in an object's
// managedFields. kubestrap owns exactly the fields it applies; a field it does not set (a
// Deployment's resources a user added, a ConfigMap key another controller writes) belongs to
// whoever set it and survives kubestrap re-running.
const FieldManager = "kubestrap"

// Patcher is the one method of a typed client (c.CoreV1().ConfigMaps(ns), ...) that Apply needs.
type Patcher[T any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// Apply server-side applies obj, a typed k8s.io/api object, as FieldManager. The applied
// configuration holds only the fields obj sets (status, null values and empty objects are left
// out), so kubestrap never claims fields it has no opinion on. Force takes over a field someone
// else changed that kubestrap sets (the image, the command), as kubeadm's create-or-update did;
// fields kubestrap does not set are never touched.
func Apply[T any](ctx context.Context, api Patcher[T], obj runtime.Object) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	kind, data, err := ApplyConfiguration(obj)
	if err != nil {
		return err
	}
	_, err = api.Patch(ctx, acc.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)})
	if err != nil {
		name := acc.GetName()
		if ns := acc.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
		return fmt.Errorf("apply %s %s: %w", kind, name, err)
	}
	return nil
}

// ApplyConfiguration is the JSON Apply sends for obj (apiVersion and kind filled in from
// Scheme, status, nulls and empty objects removed) and obj's kind.
func ApplyConfiguration(obj runtime.Object) (kind string, data []byte, err error) {
	gvks, _, err := Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return "", nil, fmt.Errorf("apply %T: not a Kubernetes API type: %v", obj, err)
	}
	gvk := gvks[0]
	b, err := json.Marshal(obj)
	if err != nil {
		return gvk.Kind, nil, fmt.Errorf("encode %s: %w", gvk.Kind, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return gvk.Kind, nil, fmt.Errorf("encode %s: %w", gvk.Kind, err)
	}
	delete(m, "status")
	dropEmpty(m)
	m["apiVersion"], m["kind"] = gvk.GroupVersion().String(), gvk.Kind
	data, err = json.Marshal(m)
	return gvk.Kind, data, err
}

// dropEmpty removes null values and empty objects, innermost first: in an applied configuration
// either would claim a field kubestrap has no value for (a container's "resources: {}" would make
// kubestrap a co-owner of the resources a user sets). None of kubestrap's objects uses an empty
// object as a value that means something (an emptyDir volume would; apply such an object another
// way).
func dropEmpty(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			dropEmpty(e)
			if m, ok := e.(map[string]any); e == nil || ok && len(m) == 0 {
				delete(t, k)
			}
		}
	case []any:
		for _, e := range t {
			dropEmpty(e)
		}
	}
}
