package csrapprover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// RBACName names the approver's ClusterRole, Roles and their bindings.
const RBACName = "kubestrap:csr-approver"

// ClusterRole is everything the approver may do cluster-wide: read kubelet serving CSRs, approve
// them for the kubelet-serving signer only, and tell the requester why not. Events are patched as
// well as created because the event recorder folds repeats of one event into a count.
func ClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: RBACName},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{certificatesv1.GroupName}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{certificatesv1.GroupName}, Resources: []string{"certificatesigningrequests/approval"}, Verbs: []string{"update"}},
			{APIGroups: []string{certificatesv1.GroupName}, Resources: []string{"signers"}, ResourceNames: []string{certificatesv1.KubeletServingSignerName}, Verbs: []string{"approve"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
}

// Roles are the approver's namespaced rights: read the nodes' Leases (where join puts the join
// addresses), and read and update its one record ConfigMap, which init creates so that the
// approver needs no right to create ConfigMaps.
func Roles() []*rbacv1.Role {
	return []*rbacv1.Role{
		{
			ObjectMeta: metav1.ObjectMeta{Name: RBACName, Namespace: corev1.NamespaceNodeLease},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch"}},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: RBACName, Namespace: metav1.NamespaceSystem},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{RecordName}, Verbs: []string{"get", "update"}},
			},
		},
	}
}

func subject() []rbacv1.Subject {
	return []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: User}}
}

// EnsureObjects server-side applies the approver's RBAC (field manager kubestrap, as every other
// object init makes) and creates its record ConfigMap. When node is not empty, the control-plane
// node's own addresses are recorded for it: init, run by a cluster admin, vouches for them as join
// does for a worker. An existing entry is kept: the record is frozen, and its data is the
// approver's, so it is created, never applied. kept is that entry when it differs from addrs.
func EnsureObjects(ctx context.Context, c kubeclient.Interface, node string, addrs []netip.Addr) (kept string, err error) {
	rbac := c.RbacV1()
	if err := kubeclient.Apply(ctx, rbac.ClusterRoles(), ClusterRole()); err != nil {
		return "", err
	}
	if err := kubeclient.Apply(ctx, rbac.ClusterRoleBindings(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: RBACName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: RBACName},
		Subjects:   subject(),
	}); err != nil {
		return "", err
	}
	for _, r := range Roles() {
		if err := kubeclient.Apply(ctx, rbac.Roles(r.Namespace), r); err != nil {
			return "", err
		}
		if err := kubeclient.Apply(ctx, rbac.RoleBindings(r.Namespace), &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.Name},
			Subjects:   subject(),
		}); err != nil {
			return "", err
		}
	}
	return ensureRecord(ctx, c, node, addrs)
}

func ensureRecord(ctx context.Context, c kubeclient.Interface, node string, addrs []netip.Addr) (kept string, err error) {
	data := map[string]string{}
	if node != "" && len(addrs) > 0 {
		data[node] = FormatAddresses(addrs)
	}
	_, err = c.CoreV1().ConfigMaps(metav1.NamespaceSystem).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: RecordName, Namespace: metav1.NamespaceSystem}, Data: data}, metav1.CreateOptions{})
	switch {
	case err == nil:
		return "", nil
	case !apierrors.IsAlreadyExists(err):
		return "", fmt.Errorf("create ConfigMap kube-system/%s: %w", RecordName, err)
	case len(data) == 0:
		return "", nil
	}
	return RecordNode(ctx, c, node, addrs)
}

// ErrNoRecord is RecordNode's answer when the record ConfigMap does not exist: the cluster was
// set up without the approver (csrApprover.disabled at init).
var ErrNoRecord = errors.New("ConfigMap kube-system/" + RecordName + " does not exist")

// RecordNode records addrs for node in the existing record ConfigMap, as init does for the first
// node and a control-plane join for its own: an admin's credentials vouch for them. An entry the
// node already has is kept (the record is frozen); kept is that entry when it differs from addrs.
// With node empty it only checks that the record exists.
func RecordNode(ctx context.Context, c kubeclient.Interface, node string, addrs []netip.Addr) (kept string, err error) {
	cms := c.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	value := FormatAddresses(addrs)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, RecordName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return ErrNoRecord
		}
		if err != nil || node == "" {
			return err
		}
		if old, ok := cm.Data[node]; ok {
			if old != value {
				kept = old
			}
			return nil
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[node] = value
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	return kept, err
}
