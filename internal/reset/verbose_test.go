package reset

import (
	"context"
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/etcdcluster"
)

// durations in progress lines ("in 120ms") differ between runs.
var durationRE = regexp.MustCompile(`[0-9.]+(ns|µs|ms|s)\b`)

// verboseRun resets a running local control plane with a stubborn apiserver and a volume mounted
// under the kubelet dir at level, and returns the log.
func verboseRun(t *testing.T, level int) (*env, string) {
	t.Helper()
	e := newEnv(t)
	e.level = level
	e.populateInit()
	e.runningLocal()
	e.procs.m[4244].stubborn = true // an apiserver that ignores SIGTERM
	vol := "var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~nfs/pv-data"
	e.write(vol+"/.keep", "")
	e.mounts.points = []string{"/", e.path(vol)}
	if err := runAll(t, e.newReset(Options{Force: true})); err != nil {
		t.Fatalf("reset: %v\n%s", err, e.log.String())
	}
	return e, e.log.String()
}

// TestResetVerbose: at -v 1 reset reports each path it removes and each wait (processes after
// SIGTERM and SIGKILL, unmounts) with its outcome, on top of the level-0 lines, which stay
// exactly as they were; level 0 has no verbose line at all.
func TestResetVerbose(t *testing.T) {
	t.Parallel()
	q, quiet := verboseRun(t, 0)
	e, loud := verboseRun(t, 1)
	if strings.Contains(quiet, "[v") {
		t.Errorf("level 0 printed verbose lines:\n%s", quiet)
	}
	for _, want := range []string{
		"[v1] removed " + e.path("etc/kubernetes/pki/ca.key") + "\n",
		"[v1] removed " + e.path("var/lib/kubestrap/supervisor.json") + "\n",
		"[v1] removed " + e.path("etc/kubernetes/admin.conf") + "\n",
		"[v1] waiting for 1 process(es) of " + e.root + " to exit after SIGTERM\n",
		"[v1] stopped waiting for 1 process(es) of " + e.root + " to exit after SIGTERM after ",
		": pids [4244] still running\n",
		"[v1] waiting for 1 process(es) of " + e.root + " to exit after SIGKILL\n",
		"[v1] done waiting for 1 process(es) of " + e.root + " to exit after SIGKILL after ",
		"[v1] waiting for the unmount of " + e.path("var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~nfs/pv-data") + "\n",
		"[v1] done waiting for the unmount of ",
	} {
		if !strings.Contains(loud, want) {
			t.Errorf("level 1 lacks %q:\n%s", want, loud)
		}
	}
	// Level 1 only adds lines: without them it is level 0's output (timings aside).
	var kept []string
	for _, line := range strings.SplitAfter(loud, "\n") {
		if !strings.HasPrefix(line, "[v1] ") {
			kept = append(kept, line)
		}
	}
	norm := func(s, root string) string {
		return durationRE.ReplaceAllString(strings.ReplaceAll(s, root, "ROOT"), "D")
	}
	if got, want := norm(strings.Join(kept, ""), e.root), norm(quiet, q.root); got != want {
		t.Errorf("level 1 without its [v1] lines differs from level 0:\n%s\nlevel 0:\n%s", got, want)
	}
}

// TestResetVerboseStaticPods: at -v 1 the static pod manifests reset removes, the wait for the
// kubelet to stop their pods and the wait for systemd to stop the kubelet are reported.
func TestResetVerboseStaticPods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.level = 1
	l := runningStaticPodNode(t, e)
	if err := e.newReset(Options{Force: true}).Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v\n%s", err, e.log.String())
	}
	log := e.log.String()
	want := []string{
		"[v1] waiting for the kubelet to stop " + itoa(len(l.contained())) + " control-plane pod process(es)\n",
		"[v1] waiting for systemd to stop and disable kubelet.service\n",
		"[v1] done waiting for systemd to stop and disable kubelet.service after ",
	}
	for name := range l.contained() {
		want = append(want, "[v1] removed "+e.p.Manifest(name)+"\n")
	}
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("lacks %q:\n%s", w, log)
		}
	}
}

// TestResetVerboseEtcd: removing this node's etcd member reports the waits at -v 1 and each
// etcd call at -v 2, and nothing of it at level 0.
func TestResetVerboseEtcd(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	members := []etcdcluster.Member{
		{ID: 0xa1, Name: "node1", PeerURLs: []string{"https://192.168.0.10:2380"}, ClientURLs: []string{"https://192.168.0.10:2379"}},
		{ID: 0xb2, Name: "node2", PeerURLs: []string{"https://192.168.0.11:2380"}, ClientURLs: []string{"https://192.168.0.11:2379"}},
	}
	for _, level := range []int{0, 1, 2} {
		e := newEnv(t)
		e.level = level
		e.sys.DialEtcd = func(context.Context, []string, *tls.Config) (etcdcluster.Client, error) {
			return &fakeCluster{members: members}, nil
		}
		writeEtcdPKI(t, e)
		e.write("var/lib/kubestrap/supervisor.json", etcdSpec(e, port, ""))
		if err := e.newReset(Options{Force: true}).RemoveEtcdMember(context.Background()); err != nil {
			t.Fatal(err)
		}
		log := e.log.String()
		for _, c := range []struct {
			level int
			line  string
		}{
			{1, "[v1] waiting for this node's etcd to answer on "},
			{1, "[v1] done waiting for a connection to etcd at "},
			{1, `[v1] done waiting for etcd to remove member "node1" (ID a1) after `},
			{2, "[v2] etcd MemberList at "},
			{2, "[v2] etcd MemberRemove a1 at "},
			{2, "[v2] etcd Status at https://192.168.0.11:2379 OK"}, // the quorum check of the member that stays
		} {
			if got := strings.Contains(log, c.line); got != (level >= c.level) {
				t.Errorf("level %d: has %q = %v:\n%s", level, c.line, got, log)
			}
		}
		if !strings.Contains(log, `[reset] Removed etcd member "node1" (ID a1)`) {
			t.Errorf("level %d: the progress line is missing:\n%s", level, log)
		}
	}
}
