package reset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fakeRuntime removes the pods by marking their processes dead, as a runtime stopping their
// sandboxes would, and records the call in the systemd fake's list to show the order.
type fakeRuntime struct {
	e        *env
	endpoint string
	pids     []int
	err      error
}

func (f *fakeRuntime) RemoveAllPods(context.Context) ([]string, error) {
	f.e.sd.calls = append(f.e.sd.calls, "cri remove-all "+f.endpoint)
	if f.err != nil {
		return nil, f.err
	}
	var names []string
	for _, pid := range f.pids {
		p, _ := f.e.procs.get(pid)
		p.dead = true
		names = append(names, "kube-system/pod-"+p.argv[0])
	}
	return names, nil
}

func (f *fakeRuntime) Close() error { return nil }

func TestStopStaticPodsThroughCRI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := runningStaticPodNode(t, e)
	var podPids []int
	for _, pid := range e.procs.alivePids() {
		argv, _ := e.procs.Cmdline(pid)
		for _, cmd := range l.contained() {
			if slices.Equal(argv, cmd) {
				podPids = append(podPids, pid)
			}
		}
	}
	// The four control-plane components and kubestrap's CSR approver.
	if len(podPids) != 5 {
		t.Fatalf("%d pod processes, want 5", len(podPids))
	}
	rt := &fakeRuntime{e: e, pids: podPids}
	e.sys.CRI = func(_ context.Context, endpoint string) (PodRuntime, error) {
		rt.endpoint = endpoint
		return rt, nil
	}
	r := e.newReset(Options{Force: true, CRISocket: "unix:///run/containerd/containerd.sock"})
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v\n%s", err, e.log.String())
	}
	// kubeadm's order: the kubelet is stopped first, so it restarts nothing.
	want := []string{"stop-disable kubelet.service", "cri remove-all unix:///run/containerd/containerd.sock"}
	if !slices.Equal(e.sd.calls, want) {
		t.Errorf("calls %v, want %v", e.sd.calls, want)
	}
	log := e.log.String()
	if strings.Contains(log, "Waiting up to") {
		t.Errorf("reset waited for the kubelet although the runtime removed the pods:\n%s", log)
	}
	if strings.Count(log, "[reset] Removed pod kube-system/") != len(podPids) {
		t.Errorf("the removed pods are not reported:\n%s", log)
	}
	for _, s := range e.procs.signals {
		for _, pid := range podPids {
			if strings.HasPrefix(s, fmt.Sprintf("%d:", pid)) {
				t.Errorf("pod process %d was signalled (%s) although the runtime removed it", pid, s)
			}
		}
	}
}

func TestStopStaticPodsRuntimeFailureFallsBackToSignals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	runningStaticPodNode(t, e)
	e.sys.CRI = func(context.Context, string) (PodRuntime, error) {
		return nil, errors.New("connection refused")
	}
	r := e.newReset(Options{Force: true, CRISocket: "unix:///nowhere.sock"})
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v\n%s", err, e.log.String())
	}
	if !strings.Contains(e.log.String(), "WARNING: the container runtime at unix:///nowhere.sock: connection refused") {
		t.Errorf("the runtime's failure is not reported:\n%s", e.log.String())
	}
	if left := e.procs.alivePids(); !slices.Equal(left, []int{shellPID, selfPID}) {
		t.Errorf("alive after stop: %v", left)
	}
}

func TestChooseCRIEndpoint(t *testing.T) {
	t.Parallel()
	const containerd, crio = "unix:///var/run/containerd/containerd.sock", "unix:///var/run/crio/crio.sock"
	kubeletCRIO := []byte(`KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=` + crio + ` --hostname-override=n1"` + "\n")
	for _, tc := range []struct {
		name     string
		given    string
		realRoot bool
		flagsEnv []byte
		found    []string
		want     string
		note     string // in the note, "" for none
	}{
		{name: "given", given: "unix:///x.sock", realRoot: true, flagsEnv: kubeletCRIO, found: []string{containerd}, want: "unix:///x.sock"},
		{name: "given under a root dir", given: "unix:///x.sock", want: "unix:///x.sock"},
		// Under a root dir the machine's runtime is never the root's.
		{name: "root dir", flagsEnv: kubeletCRIO, found: []string{containerd}},
		{name: "the kubelet's", realRoot: true, flagsEnv: kubeletCRIO, found: []string{containerd, crio}, want: crio, note: "kubeadm-flags.env"},
		{name: "the one found", realRoot: true, found: []string{crio}, want: crio, note: "the one container runtime found"},
		{name: "kubelet flags without an endpoint", realRoot: true, flagsEnv: []byte(`KUBELET_KUBEADM_ARGS="--hostname-override=n1"`), found: []string{containerd}, want: containerd},
		{name: "several and nothing names one", realRoot: true, found: []string{containerd, crio}, note: "WARNING: found several container runtimes"},
		{name: "none", realRoot: true},
	} {
		got, note := chooseCRIEndpoint(tc.given, tc.realRoot, tc.flagsEnv, tc.found)
		if got != tc.want {
			t.Errorf("%s: endpoint %q, want %q", tc.name, got, tc.want)
		}
		if !strings.Contains(note, tc.note) || (tc.want == "" && tc.note == "" && note != "") {
			t.Errorf("%s: note %q, want one with %q", tc.name, note, tc.note)
		}
		if strings.HasPrefix(tc.note, "WARNING") && !strings.Contains(note, "--cri-socket") {
			t.Errorf("%s: the warning does not say what to do: %q", tc.name, note)
		}
	}
}
