package reset

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/etcdcluster"
	"github.com/kubestrap/kubestrap/internal/etcdcluster/etcdtest"
)

// TestRemoveEtcdMemberAgainstRealEtcd runs reset's remove-etcd-member against a real
// three-member etcd cluster (one member per loopback address, the same ports, as stacked members
// on three nodes): a powered-off node's member is removed through the others found in its
// --initial-cluster, and then, with a second member down, resetting the last healthy one is
// refused with the dead member named and the cluster left as it was.
func TestRemoveEtcdMemberAgainstRealEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three etcd members (about 20 s); skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := etcdtest.NewPKI(t)
	ms := etcdtest.StartCluster(t, p, "n1", "n2", "n3")
	ic := etcdtest.InitialCluster(ms...)
	// node is the root dir of the node running m: a local-mode supervisor spec with m's flags.
	node := func(m *etcdtest.Member) *env {
		e := newEnv(t)
		e.sys.DialEtcd = etcdcluster.Dial
		spec, err := json.Marshal(map[string]any{"root": e.root, "components": []map[string]any{{"name": "etcd", "args": m.Args(p, ic)}}})
		if err != nil {
			t.Fatal(err)
		}
		e.write("var/lib/kubestrap/supervisor.json", string(spec))
		return e
	}
	tlsConfig, err := etcdcluster.ClientTLS(p.CA, p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	names := func(through *etcdtest.Member) []string {
		c, err := etcdcluster.Dial(ctx, []string{through.ClientURL}, tlsConfig)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		members, err := c.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range members {
			out = append(out, m.Name)
		}
		slices.Sort(out)
		return out
	}

	// n1's node was powered off: its own etcd does not answer, the others do.
	ms[0].Stop()
	e := node(ms[0])
	if err := e.newReset(Options{}).RemoveEtcdMember(ctx); err != nil {
		t.Fatalf("%v\n%s", err, e.log.String())
	}
	for _, want := range []string{"removing its member through the other members at " + ms[1].ClientURL + "," + ms[2].ClientURL, `Removed etcd member "n1"`} {
		if !strings.Contains(e.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, e.log.String())
		}
	}
	if got := names(ms[1]); !slices.Equal(got, []string{"n2", "n3"}) {
		t.Fatalf("members after removing n1: %v", got)
	}

	// n3 goes down too: removing n2 would leave only the dead n3, no quorum: refused, naming n3.
	// (n2 and n3 have no quorum already; the membership comes from n2's own view.)
	ms[2].Stop()
	e = node(ms[1])
	err = e.newReset(Options{}).RemoveEtcdMember(ctx)
	if err == nil || !strings.Contains(err.Error(), "refusing to reset this node") || !strings.Contains(err.Error(), `"n3"`) || !strings.Contains(err.Error(), "--ignore-preflight-errors=EtcdQuorum") {
		t.Fatalf("resetting n2 with n3 down: %v\n%s", err, e.log.String())
	}
	if got := names(ms[1]); !slices.Equal(got, []string{"n2", "n3"}) {
		t.Errorf("members after the refusal: %v", got)
	}
}
