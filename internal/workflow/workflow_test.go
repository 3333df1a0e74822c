package workflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/logx"
)

type trace struct{ ran []string }

func step(name string) func(context.Context, *trace) error {
	return func(_ context.Context, tr *trace) error {
		tr.ran = append(tr.ran, name)
		return nil
	}
}

func testRunner() *Runner[*trace] {
	return &Runner[*trace]{Phases: []Phase[*trace]{
		{Name: "preflight", Run: step("preflight")},
		{Name: "certs", Aliases: []string{"certificates"}, Run: step("certs"), Finish: step("certs-finish"), Phases: []Phase[*trace]{
			{Name: "ca", Run: step("certs/ca")},
			{Name: "apiserver", Run: step("certs/apiserver")},
		}},
		{Name: "show", Run: step("show")},
	}}
}

func TestRunAndSkip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		skip []string
		want string
	}{
		{nil, "preflight certs certs/ca certs/apiserver certs-finish show"},
		{[]string{"certs/ca"}, "preflight certs certs/apiserver certs-finish show"},
		{[]string{"certs"}, "preflight show"},
		{[]string{"certificates"}, "preflight show"},
		// A sub-phase named through its parent's alias is the same phase.
		{[]string{"certificates/ca"}, "preflight certs certs/apiserver certs-finish show"},
		{[]string{"preflight", "show"}, "certs certs/ca certs/apiserver certs-finish"},
	}
	for _, tc := range tests {
		tr := &trace{}
		if err := testRunner().Run(context.Background(), tr, tc.skip); err != nil {
			t.Fatalf("skip %v: %v", tc.skip, err)
		}
		if got := strings.Join(tr.ran, " "); got != tc.want {
			t.Errorf("skip %v: ran %q, want %q", tc.skip, got, tc.want)
		}
	}
}

func TestUnknownSkipIsAnError(t *testing.T) {
	t.Parallel()
	err := testRunner().Run(context.Background(), &trace{}, []string{"cert"})
	if err == nil || !strings.Contains(err.Error(), `unknown phase "cert"`) || !strings.Contains(err.Error(), "certs/apiserver") {
		t.Errorf("err = %v, want it to name the unknown phase and list the known ones", err)
	}
}

func TestFailureStopsAndNamesThePhase(t *testing.T) {
	t.Parallel()
	r := testRunner()
	r.Phases[1].Phases[0].Run = func(context.Context, *trace) error { return errors.New("boom") }
	tr := &trace{}
	err := r.Run(context.Background(), tr, nil)
	if err == nil || err.Error() != "phase certs/ca: boom" {
		t.Errorf("err = %v, want \"phase certs/ca: boom\"", err)
	}
	if got := strings.Join(tr.ran, " "); got != "preflight certs" {
		t.Errorf("ran %q after the failure", got)
	}
}

// TestPhaseCommands checks the generated "phase" tree: a group runs whole (with Finish), "all"
// too, a member alone runs only itself.
func TestPhaseCommands(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"phase", "certs"}, "certs certs/ca certs/apiserver certs-finish"},
		{[]string{"phase", "certs", "all"}, "certs certs/ca certs/apiserver certs-finish"},
		{[]string{"phase", "certs", "ca"}, "certs/ca"},
		{[]string{"phase", "certificates", "apiserver"}, "certs/apiserver"},
		{[]string{"phase", "show"}, "show"},
	} {
		tr := &trace{}
		root := &cobra.Command{Use: "init", SilenceErrors: true, SilenceUsage: true}
		flagged := 0
		root.AddCommand(testRunner().PhaseCommands(func(*cobra.Command, []string) (*trace, error) { return tr, nil },
			func(c *cobra.Command) { flagged++; c.Flags().Bool("dry-run", false, "") }))
		root.SetArgs(tc.args)
		root.SetOut(&bytes.Buffer{})
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := strings.Join(tr.ran, " "); got != tc.want {
			t.Errorf("%v ran %q, want %q", tc.args, got, tc.want)
		}
		if flagged == 0 {
			t.Errorf("addFlags was never called")
		}
	}
}

func TestNamesAndHelp(t *testing.T) {
	t.Parallel()
	r := testRunner()
	if got := strings.Join(r.Names(), ","); got != "preflight,certs,certs/ca,certs/apiserver,show" {
		t.Errorf("Names() = %s", got)
	}
	help := r.Help()
	for _, want := range []string{"preflight", "certs", "/ca", "/apiserver", "show"} {
		if !strings.Contains(help, want) {
			t.Errorf("Help() lacks %q:\n%s", want, help)
		}
	}
}

// A kubeadm phase kubestrap has no counterpart for is accepted with a note and changes nothing;
// an unknown name is refused with the list of valid ones, kubeadm-only names included.
func TestKubeadmOnlySkip(t *testing.T) {
	t.Parallel()
	r := testRunner()
	r.Command = "init"
	r.KubeadmOnly = []string{"addon", "addon/coredns"}
	var log bytes.Buffer
	r.Log = &log
	tr := &trace{}
	if err := r.Run(context.Background(), tr, []string{"addon/coredns", "certs/ca", "addon/coredns"}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tr.ran, " "), "preflight certs certs/apiserver certs-finish show"; got != want {
		t.Errorf("ran %q, want %q", got, want)
	}
	if got, want := log.String(), "[init] Skipping phase addon/coredns: kubestrap has no such phase yet, so there is nothing to skip\n"; got != want {
		t.Errorf("log %q, want %q (once)", got, want)
	}
	err := r.Run(context.Background(), &trace{}, []string{"addon/dns"})
	if err == nil || !strings.Contains(err.Error(), `unknown phase "addon/dns"`) ||
		!strings.Contains(err.Error(), "valid phases for init are: preflight, certs, certs/ca, certs/apiserver, show, certificates, certificates/ca, certificates/apiserver, addon, addon/coredns") {
		t.Errorf("err = %v", err)
	}
}

func TestMergeSkip(t *testing.T) {
	fromConfig := []string{"preflight", "addon/kube-proxy"}
	fromFlag := []string{"addon/kube-proxy", "show-join-command"}
	got := MergeSkip(fromConfig, fromFlag)
	want := []string{"preflight", "addon/kube-proxy", "show-join-command"}
	if !slices.Equal(got, want) {
		t.Errorf("MergeSkip = %v, want %v (config first, then flags, each once)", got, want)
	}
	got[0] = "changed"
	if fromConfig[0] != "preflight" {
		t.Error("MergeSkip's result shares storage with its input")
	}
	if got := MergeSkip(nil, nil); len(got) != 0 {
		t.Errorf("MergeSkip(nil, nil) = %v", got)
	}
}

// semanticsRunner is a group whose members run together (RunChildren), one member that only
// runs when allowed (RunIf), and two phases skipped for one shared reason.
func semanticsRunner(allowB bool) *Runner[*trace] {
	onlyWhole := func(ctx context.Context, _ *trace) (bool, string) {
		if WholeRun(ctx) {
			return false, "[test] not in a whole run"
		}
		return true, ""
	}
	return &Runner[*trace]{Phases: []Phase[*trace]{
		{Name: "group", RunChildren: func(_ context.Context, tr *trace, selected []string) error {
			tr.ran = append(tr.ran, "group("+strings.Join(selected, ",")+")")
			return nil
		}, Finish: step("group-finish"), Phases: []Phase[*trace]{
			{Name: "a", Run: step("group/a")},
			{Name: "b", Run: step("group/b"), RunIf: func(context.Context, *trace) (bool, string) { return allowB, "" }},
			{Name: "c", Run: step("group/c")},
		}},
		{Name: "late1", Run: step("late1"), RunIf: onlyWhole},
		{Name: "late2", Run: step("late2"), RunIf: onlyWhole, Phases: []Phase[*trace]{{Name: "x", Run: step("late2/x")}}},
	}}
}

// TestRunIfAndRunChildren: a group with RunChildren gets its selected members at once (skipped
// ones and those whose RunIf says no left out) and their own Run is not called, but a member
// invoked alone runs itself, still subject to its RunIf; a phase refused by RunIf is skipped with
// its sub-phases, and a shared reason is printed once; WholeRun tells whole runs from phase
// commands; BeforePhase sees every phase not skipped by name.
func TestRunIfAndRunChildren(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		allowB   bool
		skip     []string
		args     []string // a phase command, else a whole run
		want     string
		wantLog  string
		wantSeen string
	}{
		{allowB: true, want: "group(a,b,c) group-finish", wantLog: "[test] not in a whole run\n", wantSeen: "group group/a group/b group/c late1 late2"},
		{allowB: false, want: "group(a,c) group-finish", wantLog: "[test] not in a whole run\n", wantSeen: "group group/a group/b group/c late1 late2"},
		{allowB: true, skip: []string{"group/a", "late1"}, want: "group(b,c) group-finish", wantLog: "[test] not in a whole run\n", wantSeen: "group group/b group/c late2"},
		{allowB: true, skip: []string{"late1", "late2"}, want: "group(a,b,c) group-finish", wantSeen: "group group/a group/b group/c"},
		{allowB: true, skip: []string{"group"}, wantLog: "[test] not in a whole run\n", wantSeen: "late1 late2"},
		{allowB: true, args: []string{"group"}, want: "group(a,b,c) group-finish", wantSeen: "group group/a group/b group/c"},
		{allowB: false, args: []string{"group", "all"}, want: "group(a,c) group-finish", wantSeen: "group group/a group/b group/c"},
		{allowB: true, args: []string{"group", "b"}, want: "group/b", wantSeen: "b"},
		{allowB: false, args: []string{"group", "b"}, wantSeen: "b"},
		{allowB: false, args: []string{"late2"}, want: "late2 late2/x", wantSeen: "late2 late2/x"},
	} {
		tr := &trace{}
		var log bytes.Buffer
		var seen []string
		r := semanticsRunner(tc.allowB)
		r.Log = &log
		r.BeforePhase = func(_ context.Context, _ *trace, path string) error {
			seen = append(seen, path)
			return nil
		}
		if tc.args == nil {
			if err := r.Run(context.Background(), tr, tc.skip); err != nil {
				t.Fatal(err)
			}
		} else {
			root := &cobra.Command{Use: "init", SilenceErrors: true, SilenceUsage: true}
			root.AddCommand(r.PhaseCommands(func(*cobra.Command, []string) (*trace, error) { return tr, nil }, nil))
			root.SetArgs(append([]string{"phase"}, tc.args...))
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
		}
		name := fmt.Sprintf("allowB %v, skip %v, phase %v", tc.allowB, tc.skip, tc.args)
		if got := strings.Join(tr.ran, " "); got != tc.want {
			t.Errorf("%s: ran %q, want %q", name, got, tc.want)
		}
		if log.String() != tc.wantLog {
			t.Errorf("%s: log %q, want %q", name, log.String(), tc.wantLog)
		}
		if got := strings.Join(seen, " "); got != tc.wantSeen {
			t.Errorf("%s: BeforePhase saw %q, want %q", name, got, tc.wantSeen)
		}
	}
}

// TestRunChildrenAndBeforePhaseErrors: a RunChildren error names the group, and BeforePhase's error stops the run.
func TestRunChildrenAndBeforePhaseErrors(t *testing.T) {
	t.Parallel()
	r := semanticsRunner(true)
	r.Phases[0].RunChildren = func(context.Context, *trace, []string) error { return errors.New("boom") }
	if err := r.Run(context.Background(), &trace{}, nil); err == nil || err.Error() != "phase group: boom" {
		t.Errorf("err = %v, want \"phase group: boom\"", err)
	}
	r = semanticsRunner(true)
	r.BeforePhase = func(_ context.Context, _ *trace, path string) error {
		if path == "late1" {
			return errors.New("no")
		}
		return nil
	}
	tr := &trace{}
	if err := r.Run(context.Background(), tr, nil); err == nil || err.Error() != "phase late1: no" {
		t.Errorf("err = %v, want \"phase late1: no\"", err)
	}
	if got := strings.Join(tr.ran, " "); got != "group(a,b,c) group-finish" {
		t.Errorf("ran %q", got)
	}
}

// TestPhaseTimingsAtV1: at -v 1 every phase run reports when it started in the run and how long
// it took (where a command spends its time); at -v 0 nothing is added.
func TestPhaseTimingsAtV1(t *testing.T) {
	t.Parallel()
	for _, level := range []int{0, 1} {
		var out strings.Builder
		r := &Runner[*struct{}]{Command: "test", Log: logx.New(&out, level), Phases: []Phase[*struct{}]{
			{Name: "a", Run: func(context.Context, *struct{}) error { return nil }},
			{Name: "b", Phases: []Phase[*struct{}]{{Name: "c", Run: func(context.Context, *struct{}) error { return nil }}}},
		}}
		if err := r.Run(context.Background(), &struct{}{}, nil); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, phase := range []string{"a", "b", "b/c"} {
			has := strings.Contains(got, "phase "+phase+" started at +") && strings.Contains(got, "phase "+phase+" done after ")
			if has != (level == 1) {
				t.Errorf("-v %d: timing lines for %s: %v\n%s", level, phase, has, got)
			}
		}
	}
}
