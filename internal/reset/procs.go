package reset

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/supervisor"
)

// Processes reads the process table. procfs.FS is the real one; tests use a fake.
type Processes interface {
	// Pids lists every process id.
	Pids() ([]int, error)
	// Cmdline is the argv of pid; an error when the process is gone.
	Cmdline(pid int) ([]string, error)
	// Alive reports whether pid runs (a zombie does not).
	Alive(pid int) bool
	// Parent is the parent pid of pid, 0 when unknown.
	Parent(pid int) int
	// MountNS identifies pid's mount namespace ("" when unknown), so that the processes of
	// containers, whose paths look like the host's, are never taken for the host's.
	MountNS(pid int) string
}

// Process is one process reset stops, and why it counts as the root's.
type Process struct {
	PID  int      `json:"pid"`
	Argv []string `json:"argv"`
	Why  string   `json:"why"`
}

func (p Process) String() string {
	cmd := strings.Join(p.Argv, " ")
	if len(cmd) > 160 {
		cmd = cmd[:157] + "..."
	}
	return strconv.Itoa(p.PID) + " " + cmd + " (" + p.Why + ")"
}

// whySupervisor is Process.Why of the root's local supervisor.
const whySupervisor = "local supervisor of the root"

// componentNames are the programs kubestrap runs for a root, by the name they show in ps.
var componentNames = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", components.CSRApproverName, "kubelet"}

// kubestrapRunsFor are the kubestrap subcommands that act on a root for a long time (or are a
// component under its own name); a `kubestrap status` or another reset merely looking at the root
// is not the root's process.
var kubestrapRunsFor = append([]string{"init", "join", "supervise", "csr-approver"}, componentNames...)

// processFinder decides which processes belong to a root.
type processFinder struct {
	p     paths.Paths
	procs Processes
	// skip are this process and its ancestors: a shell or test that started reset with the root
	// on its own command line must survive it.
	skip map[int]bool
	// selfNS is this process's mount namespace.
	selfNS string
}

func newProcessFinder(p paths.Paths, procs Processes, self int) *processFinder {
	f := &processFinder{p: p, procs: procs, skip: map[int]bool{}, selfNS: procs.MountNS(self)}
	for pid, n := self, 0; pid > 1 && n < 1000 && !f.skip[pid]; pid, n = procs.Parent(pid), n+1 {
		f.skip[pid] = true
	}
	return f
}

// find lists the live processes of the root:
//   - anything whose argv[0] lies in the root's component bin dir (what the local supervisor or a
//     systemd unit of kubestrap started);
//   - the root's local supervisor (`kubestrap supervise --root-dir <root>`);
//   - with a root other than "/": a component or kubestrap process (init, join, ...) whose
//     arguments name a path under the root — what a killed init or a hand-started component
//     leaves. The real root is excluded from this rule, since every path is under "/" and
//     another installation's processes would match.
func (f *processFinder) find() ([]Process, error) {
	pids, err := f.procs.Pids()
	if err != nil {
		return nil, err
	}
	slices.Sort(pids)
	var out []Process
	for _, pid := range pids {
		if f.skip[pid] {
			continue
		}
		argv, err := f.procs.Cmdline(pid)
		if err != nil || len(argv) == 0 {
			continue
		}
		why := f.why(argv)
		if why == "" || !f.procs.Alive(pid) {
			continue
		}
		if ns := f.procs.MountNS(pid); ns != "" && f.selfNS != "" && ns != f.selfNS {
			continue
		}
		out = append(out, Process{PID: pid, Argv: argv, Why: why})
	}
	return out, nil
}

func (f *processFinder) why(argv []string) string {
	bin := f.p.BinDir()
	if filepath.IsAbs(argv[0]) && filepath.Dir(filepath.Clean(argv[0])) == bin {
		return "started through " + bin
	}
	if supervisor.IsSupervisorOf(argv, f.p.Root()) {
		return whySupervisor
	}
	if f.p.IsRealRoot() {
		return ""
	}
	base := filepath.Base(argv[0])
	switch {
	case slices.Contains(componentNames, base):
	case strings.HasPrefix(base, "kubestrap") && slices.ContainsFunc(argv[1:], func(a string) bool {
		return slices.Contains(kubestrapRunsFor, a)
	}):
	default:
		return ""
	}
	for _, a := range argv[1:] {
		if refersTo(a, f.p.Root()) {
			return "its arguments name files under the root"
		}
	}
	return ""
}

// refersTo reports whether a command-line argument ("--flag=value", "value", or a
// comma-separated list) names root or a path inside it.
func refersTo(arg, root string) bool {
	if _, v, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(arg, "-") {
		arg = v
	}
	for _, v := range strings.Split(arg, ",") {
		if v = filepath.Clean(strings.TrimSpace(v)); v != "." && isWithin(v, root) {
			return true
		}
	}
	return false
}
