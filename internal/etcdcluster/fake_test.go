package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeClient is a cluster of members whose health and promote answers a test scripts.
type fakeClient struct {
	mu      sync.Mutex
	members []Member
	down    map[string]bool // client URLs that do not answer
	// promote answers each MemberPromote call in turn; after the last, nil. applyOnErr makes a
	// promote that returns an error take effect anyway (a timeout after etcd applied it).
	promote    []error
	applyOnErr bool
	promotes   int
	removed    []uint64
	added      []string
}

func member(id uint64, name string, learner bool) Member {
	m := Member{ID: id, Name: name, PeerURLs: []string{fmt.Sprintf("https://10.0.0.%d:2380", id)}, IsLearner: learner}
	if name != "" {
		m.ClientURLs = []string{fmt.Sprintf("https://10.0.0.%d:2379", id)}
	}
	return m
}

func (f *fakeClient) MemberList(context.Context) ([]Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members), nil
}

func (f *fakeClient) MemberAddAsLearner(_ context.Context, peerURL string) (Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := Member{ID: 0x99, PeerURLs: []string{peerURL}, IsLearner: true}
	f.members = append(f.members, m)
	f.added = append(f.added, peerURL)
	return m, nil
}

func (f *fakeClient) MemberPromote(_ context.Context, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.promotes++
	var err error
	if len(f.promote) > 0 {
		err, f.promote = f.promote[0], f.promote[1:]
	}
	if err == nil || f.applyOnErr {
		for i := range f.members {
			if f.members[i].ID == id {
				f.members[i].IsLearner = false
			}
		}
	}
	return err
}

func (f *fakeClient) MemberRemove(_ context.Context, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	f.members = slices.DeleteFunc(f.members, func(m Member) bool { return m.ID == id })
	return nil
}

func (f *fakeClient) Status(ctx context.Context, endpoint string) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[endpoint] {
		return Status{}, context.DeadlineExceeded
	}
	for _, m := range f.members {
		if slices.Contains(m.ClientURLs, endpoint) {
			return Status{MemberID: m.ID, Leader: 1, IsLearner: m.IsLearner}, nil
		}
	}
	return Status{}, errors.New("connection refused")
}

func (f *fakeClient) Lock(context.Context, string, time.Duration) (func(), error) {
	return func() {}, nil
}
func (f *fakeClient) Close() error { return nil }

func TestPromoteTimedOutButApplied(t *testing.T) {
	t.Parallel()
	f := &fakeClient{members: []Member{member(1, "n1", false), member(2, "n2", true)},
		promote: []error{context.DeadlineExceeded}, applyOnErr: true}
	if err := Promote(context.Background(), f, 2, time.Minute); err != nil {
		t.Fatalf("a promote that timed out but was applied: %v", err)
	}
	if f.promotes != 1 {
		t.Errorf("%d promote calls; the member list should have shown the voter after the first", f.promotes)
	}
}

func TestPromoteRetriesUntilCaughtUp(t *testing.T) {
	t.Parallel()
	f := &fakeClient{members: []Member{member(1, "n1", false), member(2, "n2", true)},
		promote: []error{rpctypes.ErrMemberLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady}}
	if err := Promote(context.Background(), f, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if f.promotes != 3 {
		t.Errorf("%d promote calls, want 3 (two not-ready answers, then success)", f.promotes)
	}
}

func TestPromoteWaitsForStartAndGivesUp(t *testing.T) {
	t.Parallel()
	// Never started (no name): never promoted, and the error says why after the timeout.
	f := &fakeClient{members: []Member{member(1, "n1", false), member(2, "", true)}}
	err := Promote(context.Background(), f, 2, 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not promoted within") || !strings.Contains(err.Error(), "has not started") {
		t.Errorf("err = %v", err)
	}
	if f.promotes != 0 {
		t.Errorf("promoted a learner that had not started (%d calls)", f.promotes)
	}
	// Removed meanwhile: a clear, immediate error.
	f = &fakeClient{members: []Member{member(1, "n1", false)}}
	if err := Promote(context.Background(), f, 2, time.Minute); err == nil || !strings.Contains(err.Error(), "not in the cluster") {
		t.Errorf("removed learner: %v", err)
	}
	// Already a voter: nothing to do.
	f = &fakeClient{members: []Member{member(1, "n1", false), member(2, "n2", false)}}
	if err := Promote(context.Background(), f, 2, time.Minute); err != nil || f.promotes != 0 {
		t.Errorf("voter: err %v, %d promote calls", err, f.promotes)
	}
}

func TestAddLearnerRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	three := []Member{member(1, "n1", false), member(2, "n2", false), member(3, "n3", false)}

	f := &fakeClient{members: append(slices.Clone(three), member(4, "", true))}
	_, _, err := AddLearner(ctx, f, "n5", "https://10.0.0.5:2380")
	if err == nil || !strings.Contains(err.Error(), "is a learner") || !strings.Contains(err.Error(), "etcdctl member remove 4") {
		t.Errorf("second learner: %v", err)
	}

	f = &fakeClient{members: slices.Clone(three), down: map[string]bool{"https://10.0.0.3:2379": true}}
	_, _, err = AddLearner(ctx, f, "n5", "https://10.0.0.5:2380")
	if err == nil || !strings.Contains(err.Error(), "unhealthy") || !strings.Contains(err.Error(), `"n3"`) {
		t.Errorf("unhealthy cluster: %v", err)
	}

	f = &fakeClient{members: slices.Clone(three)}
	_, _, err = AddLearner(ctx, f, "n5", "https://10.0.0.2:2380")
	if err == nil || !strings.Contains(err.Error(), "already belongs to voting etcd member") {
		t.Errorf("peer URL of a voter: %v", err)
	}
	if len(f.added) != 0 {
		t.Errorf("a refused add added %v", f.added)
	}

	// Accepted, and retried: the second call returns the same learner without adding another.
	f = &fakeClient{members: slices.Clone(three)}
	m, ic, err := AddLearner(ctx, f, "n5", "https://10.0.0.5:2380")
	if err != nil {
		t.Fatal(err)
	}
	want := "n1=https://10.0.0.1:2380,n2=https://10.0.0.2:2380,n3=https://10.0.0.3:2380,n5=https://10.0.0.5:2380"
	if ic != want || !m.IsLearner || m.Name != "n5" {
		t.Errorf("member %+v, initial cluster %q; want %q", m, ic, want)
	}
	m2, ic2, err := AddLearner(ctx, f, "n5", "https://10.0.0.5:2380")
	if err != nil || m2.ID != m.ID || ic2 != ic || len(f.added) != 1 {
		t.Errorf("retried add: %+v %q %v, %d adds", m2, ic2, err, len(f.added))
	}
}

func TestQuorumGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	three := func() []Member {
		return []Member{member(1, "n1", false), member(2, "n2", false), member(3, "n3", false)}
	}
	n3down := map[string]bool{"https://10.0.0.3:2379": true}

	// n3 is down: removing n1 leaves n2 and n3 with one healthy, fewer than 2.
	f := &fakeClient{members: three(), down: n3down}
	err := Remove(ctx, f, 1, false)
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Remaining != 2 || qe.Healthy != 1 {
		t.Fatalf("err = %v, want a QuorumError 1 of 2", err)
	}
	for _, want := range []string{`"n3"`, "unhealthy", "quorum"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if len(f.removed) != 0 {
		t.Errorf("a refused removal removed %x", f.removed)
	}
	// --force removes it anyway.
	if err := Remove(ctx, f, 1, true); err != nil || !slices.Equal(f.removed, []uint64{1}) {
		t.Errorf("forced: err %v, removed %x", err, f.removed)
	}

	// Removing the member that is down leaves two healthy of two.
	f = &fakeClient{members: three(), down: n3down}
	if err := Remove(ctx, f, 3, false); err != nil {
		t.Errorf("removing the dead member: %v", err)
	}
	// Learners neither count nor block: one voter and a learner, remove the learner.
	f = &fakeClient{members: []Member{member(1, "n1", false), member(2, "", true)}}
	if err := Remove(ctx, f, 2, false); err != nil {
		t.Errorf("removing a learner: %v", err)
	}
	// A learner does not make up a quorum: two voters (one down) and a healthy learner.
	f = &fakeClient{members: []Member{member(1, "n1", false), member(2, "n2", false), member(3, "n3", true)}, down: map[string]bool{"https://10.0.0.2:2379": true}}
	if err := Remove(ctx, f, 1, false); !errors.As(err, &qe) {
		t.Errorf("two voters, the other down, a learner: err %v, want a QuorumError", err)
	}
	// The last voter, and an unknown ID.
	f = &fakeClient{members: []Member{member(1, "n1", false)}}
	if err := Remove(ctx, f, 1, true); err == nil || !strings.Contains(err.Error(), "only voting member") {
		t.Errorf("last member: %v", err)
	}
	if err := Remove(ctx, f, 7, false); !errors.Is(err, ErrNotMember) {
		t.Errorf("unknown member: %v", err)
	}
}

func TestHealthCountsVotersOnly(t *testing.T) {
	t.Parallel()
	f := &fakeClient{members: []Member{member(1, "n1", false), member(2, "n2", false), member(3, "n3", false), member(4, "", true)},
		down: map[string]bool{"https://10.0.0.2:2379": true}}
	healthy, total, bad, err := Health(context.Background(), f)
	if err != nil || healthy != 2 || total != 3 || len(bad) != 1 || bad[0].ID != 2 {
		t.Errorf("Health = %d/%d %v %v; want 2/3 with n2 unhealthy", healthy, total, bad, err)
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fakeC := fake.NewClientset(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.2"}}, {Addresses: []string{"10.0.0.1"}}},
	}, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "other"}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.9.9.9"}}},
	})
	c := kubeclienttest.Wrap(fakeC)
	got, err := Endpoints(ctx, c, 2379)
	if want := []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("EndpointSlice: %v %v, want %v", got, err, want)
	}
	c = kubeclienttest.Wrap(fake.NewClientset(&corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
		Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "fd00::1"}}}},
	}))
	got, err = Endpoints(ctx, c, 2379)
	if want := []string{"https://[fd00::1]:2379"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Endpoints: %v %v, want %v", got, err, want)
	}
	if _, err := Endpoints(ctx, kubeclienttest.Wrap(fake.NewClientset()), 2379); err == nil {
		t.Error("no endpoints: no error")
	}
}
