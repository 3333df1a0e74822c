package csrapprover

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func lease(node, addrs string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: node, Namespace: corev1.NamespaceNodeLease,
		Annotations: map[string]string{JoinAddressesAnnotation: addrs},
	}}
}

// TestController: with the record ConfigMap in place and a worker's Lease carrying its join
// addresses, the controller freezes them, approves the worker's own kubelet serving CSR, leaves a
// CSR with a foreign IP pending with a Warning Event that names the check, ignores another
// signer's CSR, and keeps the frozen addresses when the Lease later claims more.
func TestController(t *testing.T) {
	keys(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fakeClient := fake.NewClientset()
	client := kubeclienttest.Wrap(fakeClient)
	if _, err := EnsureObjects(ctx, client, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease("worker-1", "10.0.0.5,fd00::5"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	good := kubeletRequest().csr(t, "good")
	foreignReq := kubeletRequest()
	foreignReq.ips = []string{"10.0.0.5", "192.0.2.99"}
	foreign := foreignReq.csr(t, "foreign")
	clientReq := kubeletRequest()
	clientReq.signer = certificatesv1.KubeAPIServerClientKubeletSignerName
	other := clientReq.csr(t, "other-signer")
	for _, csr := range []*certificatesv1.CertificateSigningRequest{good, foreign, other} {
		if _, err := client.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	recorder := record.NewFakeRecorder(100)
	var log syncBuffer
	done := make(chan error, 1)
	go func() { done <- New(client, recorder, &log).Run(ctx) }()

	waitFor(t, "CSR good to be approved", func() bool { return approved(ctx, t, fakeClient, "good") })
	var events []string
	drain := func() {
		for {
			select {
			case e := <-recorder.Events:
				events = append(events, e)
			default:
				return
			}
		}
	}
	foreignWarnings := func() int {
		drain()
		n := 0
		for _, e := range events {
			if strings.HasPrefix(e, "Warning "+ReasonNotApproved) && strings.Contains(e, "192.0.2.99 is not an address") {
				n++
			}
		}
		return n
	}
	waitFor(t, "a Warning event for CSR foreign", func() bool { return foreignWarnings() >= 1 })
	want := `Warning KubestrapNotApproved left pending by kubestrap-csr-approver: ip-addresses check failed: IP address 192.0.2.99 is not an address node "worker-1" had when it joined (10.0.0.5,fd00::5)`
	if !slices.Contains(events, want) {
		t.Errorf("events %q lack %q", events, want)
	}
	waitFor(t, "the approval's Normal event", func() bool {
		drain()
		return slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, "Normal "+ReasonApproved) })
	})
	for _, name := range []string{"foreign", "other-signer"} {
		csr, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(csr.Status.Conditions) != 0 {
			t.Errorf("CSR %s: conditions %v, want none (pending, never denied)", name, csr.Status.Conditions)
		}
	}
	if got := recorded(ctx, t, fakeClient)["worker-1"]; got != "10.0.0.5,fd00::5" {
		t.Errorf("recorded addresses of worker-1 = %q", got)
	}

	// A later self-report is not trusted: the node rewrites its annotation to cover the foreign
	// address and asks again.
	l := lease("worker-1", "10.0.0.5,fd00::5,192.0.2.99")
	if _, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	again := foreignReq.csr(t, "foreign-again")
	if _, err := client.CertificatesV1().CertificateSigningRequests().Create(ctx, again, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rewritten annotation to be noticed", func() bool {
		return strings.Contains(log.String(), `ignoring kubestrap.io/join-addresses="10.0.0.5,fd00::5,192.0.2.99"`)
	})
	waitFor(t, "a Warning event for CSR foreign-again", func() bool { return foreignWarnings() >= 2 })
	if approved(ctx, t, fakeClient, "foreign-again") {
		t.Error("foreign-again was approved after the node rewrote its annotation")
	}
	if got := recorded(ctx, t, fakeClient)["worker-1"]; got != "10.0.0.5,fd00::5" {
		t.Errorf("recorded addresses of worker-1 changed to %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPendingUntilJoinAddresses: a CSR with IP SANs that arrives before the node's join
// addresses stays pending, and is approved once they appear.
func TestPendingUntilJoinAddresses(t *testing.T) {
	keys(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fakeClient := fake.NewClientset()
	client := kubeclienttest.Wrap(fakeClient)
	if _, err := EnsureObjects(ctx, client, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CertificatesV1().CertificateSigningRequests().Create(ctx, kubeletRequest().csr(t, "early"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	recorder := record.NewFakeRecorder(100)
	go func() { _ = New(client, recorder, &syncBuffer{}).Run(ctx) }()
	select {
	case e := <-recorder.Events:
		if !strings.Contains(e, `no join addresses are recorded for node "worker-1"`) {
			t.Fatalf("event %q", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event for the early CSR")
	}
	if approved(ctx, t, fakeClient, "early") {
		t.Fatal("approved without join addresses")
	}
	if _, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease("worker-1", "10.0.0.5,fd00::5"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "CSR early to be approved", func() bool { return approved(ctx, t, fakeClient, "early") })
}

// TestEnsureObjects: least privilege, and init's entry for the control-plane node is written once
// and never replaced.
func TestEnsureObjects(t *testing.T) {
	ctx := context.Background()
	fakeClient := fake.NewClientset()
	client := kubeclienttest.Wrap(fakeClient)
	cp := []netip.Addr{netip.MustParseAddr("192.168.0.10")}
	for range 2 {
		if kept, err := EnsureObjects(ctx, client, "cp-1", cp); err != nil || kept != "" {
			t.Fatalf("kept %q, err %v", kept, err)
		}
	}
	cr, err := client.RbacV1().ClusterRoles().Get(ctx, RBACName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var approve bool
	for _, r := range cr.Rules {
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") {
			t.Errorf("wildcard rule %v", r)
		}
		if slices.Contains(r.Verbs, "approve") {
			approve = true
			if !slices.Equal(r.ResourceNames, []string{certificatesv1.KubeletServingSignerName}) {
				t.Errorf("approve is not limited to the kubelet-serving signer: %v", r)
			}
		}
		if slices.Contains(r.Resources, "nodes") || slices.Contains(r.Resources, "secrets") {
			t.Errorf("rule %v grants more than the approver uses", r)
		}
	}
	if !approve {
		t.Error("no approve rule")
	}
	crb, err := client.RbacV1().ClusterRoleBindings().Get(ctx, RBACName, metav1.GetOptions{})
	if err != nil || len(crb.Subjects) != 1 || crb.Subjects[0].Name != User {
		t.Fatalf("binding %v, %v", crb, err)
	}
	for _, ns := range []string{corev1.NamespaceNodeLease, metav1.NamespaceSystem} {
		if _, err := client.RbacV1().RoleBindings(ns).Get(ctx, RBACName, metav1.GetOptions{}); err != nil {
			t.Errorf("RoleBinding in %s: %v", ns, err)
		}
	}
	kept, err := EnsureObjects(ctx, client, "cp-1", []netip.Addr{netip.MustParseAddr("10.9.9.9")})
	if err != nil || kept != "192.168.0.10" {
		t.Fatalf("kept %q, err %v; want the first value reported as kept", kept, err)
	}
	if got := recorded(ctx, t, fakeClient)["cp-1"]; got != "192.168.0.10" {
		t.Errorf("cp-1 recorded as %q, want the first value 192.168.0.10", got)
	}
}

// TestRecordNode: a joining control-plane node's entry is added beside the others; a cluster
// without the record (the approver disabled at init) is ErrNoRecord, and nothing is created.
func TestRecordNode(t *testing.T) {
	ctx := context.Background()
	fakeClient := fake.NewClientset()
	client := kubeclienttest.Wrap(fakeClient)
	cp2 := []netip.Addr{netip.MustParseAddr("192.168.0.12")}
	if _, err := RecordNode(ctx, client, "cp-2", cp2); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("err = %v, want ErrNoRecord", err)
	}
	if _, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, RecordName, metav1.GetOptions{}); err == nil {
		t.Fatal("RecordNode created the record")
	}
	if _, err := EnsureObjects(ctx, client, "cp-1", []netip.Addr{netip.MustParseAddr("192.168.0.10")}); err != nil {
		t.Fatal(err)
	}
	if kept, err := RecordNode(ctx, client, "cp-2", cp2); err != nil || kept != "" {
		t.Fatalf("kept %q, err %v", kept, err)
	}
	want := map[string]string{"cp-1": "192.168.0.10", "cp-2": "192.168.0.12"}
	if got := recorded(ctx, t, fakeClient); !maps.Equal(got, want) {
		t.Errorf("record %v, want %v", got, want)
	}
}

func approved(ctx context.Context, t *testing.T, c *fake.Clientset, name string) bool {
	t.Helper()
	csr, err := c.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range csr.Status.Conditions {
		if cond.Type == certificatesv1.CertificateApproved && cond.Status == corev1.ConditionTrue && cond.Reason == ReasonApproved {
			return true
		}
	}
	return false
}

func recorded(ctx context.Context, t *testing.T, c *fake.Clientset) map[string]string {
	t.Helper()
	cm, err := c.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, RecordName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// TestStopBeforeCachesSyncIsClean: a stop while the apiserver cannot be listed yet (as after a
// boot) ends Run without an error, so the process exits 0 and systemd does not mark its unit
// failed when reset stops it.
func TestStopBeforeCachesSyncIsClean(t *testing.T) {
	fakeClient := fake.NewClientset()
	client := kubeclienttest.Wrap(fakeClient)
	fakeClient.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("the apiserver is not up yet")
	})
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	done := make(chan error, 1)
	go func() { done <- New(client, record.NewFakeRecorder(10), &log).Run(ctx) }()
	time.Sleep(200 * time.Millisecond) // let the informers try, and fail, to list
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after a stop before the caches synced: %v, want nil (a clean stop)", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
	if !strings.Contains(log.String(), "Stopped before the CSR and Lease caches synced") {
		t.Errorf("log: %q", log.String())
	}
}

// TestAccessRetry: quick retries while init is about to grant the rights, slow ones after.
func TestAccessRetry(t *testing.T) {
	for _, tc := range []struct {
		since time.Duration
		want  time.Duration
	}{{0, 250 * time.Millisecond}, {accessFastRetryFor - time.Second, 250 * time.Millisecond}, {accessFastRetryFor, 2 * time.Second}, {time.Hour, 2 * time.Second}} {
		if got := accessRetry(tc.since); got != tc.want {
			t.Errorf("accessRetry(%s) = %s, want %s", tc.since, got, tc.want)
		}
	}
}
