package etcdcluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/etcdcluster/etcdtest"
)

// TestMembershipAgainstRealEtcd grows a real three-member cluster with AddLearner and Promote,
// checks the refusals and the lock, then loses a member and checks the quorum guard.
func TestMembershipAgainstRealEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three etcd members (about 10 s); skipped with -short")
	}
	StatusTimeout = 2 * time.Second // a stopped member is recognised sooner; this test is not parallel
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := etcdtest.NewPKI(t)
	cport, pport := etcdtest.Ports(t)
	n1 := etcdtest.NewMember(t, "n1", etcdtest.Hosts[0], cport, pport)
	n2 := etcdtest.NewMember(t, "n2", etcdtest.Hosts[1], cport, pport)
	n3 := etcdtest.NewMember(t, "n3", etcdtest.Hosts[2], cport, pport)
	n1.Start(t, p, etcdtest.InitialCluster(n1), "new")

	tlsConfig, err := ClientTLS(p.CA, p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctx, []string{n1.ClientURL}, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h, total, _, err := Health(ctx, c); err != nil || h != 1 || total != 1 {
		t.Fatalf("one member: Health %d/%d %v", h, total, err)
	}

	// n2 joins as a learner; a second learner is refused while it exists; a retried add of n2
	// returns the same learner.
	l2, ic, err := AddLearner(ctx, c, "n2", n2.PeerURL)
	if err != nil {
		t.Fatal(err)
	}
	if want := "n1=" + n1.PeerURL + ",n2=" + n2.PeerURL; ic != want {
		t.Errorf("initial cluster %q, want %q", ic, want)
	}
	if _, _, err := AddLearner(ctx, c, "n3", n3.PeerURL); err == nil || !strings.Contains(err.Error(), "is a learner") {
		t.Errorf("second learner: %v", err)
	}
	if again, _, err := AddLearner(ctx, c, "n2", n2.PeerURL); err != nil || again.ID != l2.ID {
		t.Errorf("retried add: %x %v, want %x", again.ID, err, l2.ID)
	}
	n2.Start(t, p, ic, "existing")
	start := time.Now()
	if err := Promote(ctx, c, l2.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("n2 started and promoted in %s", time.Since(start).Round(time.Millisecond))

	l3, ic, err := AddLearner(ctx, c, "n3", n3.PeerURL)
	if err != nil {
		t.Fatal(err)
	}
	n3.Start(t, p, ic, "existing")
	if err := Promote(ctx, c, l3.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	members, err := c.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(votersOf(members)) != 3 {
		t.Fatalf("members %+v, want three voters", members)
	}
	// The members report health once each knows the leader.
	deadline := time.Now().Add(time.Minute)
	for {
		h, total, bad, err := Health(ctx, c)
		if err == nil && h == 3 && total == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("three members: Health %d/%d %v %v", h, total, bad, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The lock: a second holder waits until the first lets go.
	unlock, err := Lock(ctx, c, "/kubestrap/test-lock")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Dial(ctx, []string{n2.ClientURL}, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	short, scancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if _, err := Lock(short, c2, "/kubestrap/test-lock"); err == nil {
		t.Error("a second holder took a held lock")
	}
	scancel()
	unlock()
	unlock2, err := Lock(ctx, c2, "/kubestrap/test-lock")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()

	// n3 goes away: removing n1 would leave n2 and a dead n3, refused; removing n3 is safe.
	n3.Stop()
	var id1 uint64
	for _, m := range members {
		if m.Name == "n1" {
			id1 = m.ID
		}
	}
	err = Remove(ctx, c, id1, false)
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Healthy != 1 || qe.Remaining != 2 || len(qe.Unhealthy) != 1 || qe.Unhealthy[0].Name != "n3" {
		t.Fatalf("removing n1 with n3 down: %v", err)
	}
	if err := Remove(ctx, c, l3.ID, false); err != nil {
		t.Fatalf("removing the stopped n3: %v", err)
	}
	members, err = c.MemberList(ctx)
	if err != nil || len(members) != 2 {
		t.Errorf("after removing n3: %+v %v", members, err)
	}
}
