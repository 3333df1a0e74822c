package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// Source choices of Options.Source; the concrete ones are the SourceKind values.
const SourceAuto = "auto"

// Options is what show-apiserver-options was asked to do.
type Options struct {
	Paths paths.Paths
	// ProcDir is the proc filesystem to scan ("/proc").
	ProcDir string
	// ExtraComms: see ProcScanner.ExtraComms.
	ExtraComms []string
	// Source is "auto" (process, else manifest, else unit) or one SourceKind.
	Source string
	// PID picks one process (process and auto sources).
	PID int
	// Kubeconfig for the flagz source; empty means <root>/etc/kubernetes/admin.conf.
	Kubeconfig string
	// Output is a Render format.
	Output string
	// All adds every option not set, with its default and help.
	All bool
	// Explain, when not empty, explains these options instead of listing all.
	Explain []string
	// Diff compares every local source instead of showing one.
	Diff bool
	// Catalog is the bundled kube-apiserver's options; nil when unavailable.
	Catalog Catalog

	Out, Err io.Writer

	// readHook is passed to the scanner (tests simulate unreadable processes with it).
	readHook func(pid int, file string) error
}

// OptionError is a contradictory or invalid combination of options: a usage mistake.
type OptionError struct{ Msg string }

func (e *OptionError) Error() string { return e.Msg }

// NotFoundError means no source had a kube-apiserver; it lists where Run looked.
type NotFoundError struct {
	Looked []string
}

func (e *NotFoundError) Error() string {
	return "no kube-apiserver found; looked in:\n  - " + strings.Join(e.Looked, "\n  - ")
}

// ExitCode is 2, distinguishing "nothing to show" from failures (1).
func (e *NotFoundError) ExitCode() int { return 2 }

// MultipleProcessesError lists the candidate processes when --pid is needed to choose.
type MultipleProcessesError struct {
	Processes []Process
	Denied    []DeniedProcess
}

func (e *MultipleProcessesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d kube-apiserver processes are running; pick one with --pid:", len(e.Processes)+len(e.Denied))
	for _, p := range e.Processes {
		b.WriteString("\n  " + p.summary())
	}
	for _, d := range e.Denied {
		fmt.Fprintf(&b, "\n  %d  (command line unreadable: permission denied)", d.PID)
	}
	return b.String()
}

// PermissionError means a kube-apiserver process exists but its command line cannot be read.
type PermissionError struct {
	Denied []DeniedProcess
}

func (e *PermissionError) Error() string {
	var pids []string
	for _, d := range e.Denied {
		pids = append(pids, fmt.Sprint(d.PID))
	}
	return fmt.Sprintf("permission denied reading the command line of kube-apiserver process %s (%v): run with sudo",
		strings.Join(pids, ", "), e.Denied[0].Err)
}

// absentError means one source has no kube-apiserver; where describes the place looked at.
type absentError struct{ where string }

func (e *absentError) Error() string { return "no kube-apiserver in " + e.where }

func isAbsent(err error) (string, bool) {
	var a *absentError
	if errors.As(err, &a) {
		return a.where, true
	}
	return "", false
}

func (o *Options) validate() error {
	if o.Source == "" {
		o.Source = SourceAuto
	}
	if names := sourceNames(o.Paths); !slices.Contains(names, o.Source) {
		return &OptionError{fmt.Sprintf("unknown --source %q: want %s", o.Source, runmode.List(names))}
	}
	switch o.Output {
	case "":
		o.Output = OutputTable
	case OutputTable, OutputYAML, OutputJSON, OutputArgs:
	default:
		return &OptionError{fmt.Sprintf("unknown output format %q: want table, yaml, json or args", o.Output)}
	}
	if o.PID < 0 {
		return &OptionError{"--pid must be a process id"}
	}
	if o.PID != 0 && o.Source != SourceAuto && o.Source != string(SourceProcess) {
		return &OptionError{"--pid applies to the process source only; drop --source " + o.Source}
	}
	modes := 0
	for _, on := range []bool{o.All, len(o.Explain) > 0, o.Diff} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		return &OptionError{"--all, --explain and --diff exclude each other"}
	case o.Diff && o.Source != SourceAuto:
		return &OptionError{"--diff compares every local source (process, manifest, unit); drop --source"}
	case (o.Diff || len(o.Explain) > 0) && o.Output != OutputTable:
		return &OptionError{"--diff and --explain print text; drop -o"}
	case o.All && o.Output == OutputArgs:
		return &OptionError{"-o args prints the command line only; --all does not apply"}
	}
	if o.ProcDir == "" {
		o.ProcDir = "/proc"
	}
	if o.Err == nil {
		o.Err = io.Discard
	}
	return nil
}

// Run does what o asks and prints to o.Out (data) and o.Err (notices). Its errors are
// *OptionError (usage), *NotFoundError (exit 2), *DiffError (exit 1), *MultipleProcessesError,
// *PermissionError or plain failures.
func Run(ctx context.Context, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	switch {
	case o.Diff:
		return o.runDiff()
	case len(o.Explain) > 0:
		inv, err := o.load(ctx)
		noSource := ""
		var nf *NotFoundError
		if errors.As(err, &nf) {
			inv, noSource = nil, "no kube-apiserver found: it looked in "+strings.Join(nf.Looked, "; ")
		} else if err != nil {
			return err
		}
		return Explain(o.Out, o.Explain, inv, o.Catalog, noSource)
	}
	if o.All && o.Catalog == nil {
		return errors.New("--all needs the bundled kube-apiserver's flag catalog, which this kubestrap build does not include")
	}
	inv, err := o.load(ctx)
	if err != nil {
		return err
	}
	if len(inv.Extra) > 0 {
		fmt.Fprintf(o.Err, "warning: %s has arguments that are not flags (kube-apiserver refuses them): %s\n",
			inv.Label(), strings.Join(inv.Extra, " "))
	}
	if o.All {
		AddDefaults(inv, o.Catalog)
	}
	return Render(o.Out, inv, o.Output, o.All)
}

// SourceChoices are the values of --source, for its help.
func SourceChoices() []string { return sourceNames(paths.MustUnder("/")) }

// sourceNames are the values of --source: auto, the running process, each run mode's file,
// and /flagz.
func sourceNames(p paths.Paths) []string {
	names := []string{SourceAuto}
	for _, k := range localSources(p) {
		names = append(names, string(k))
	}
	return append(names, string(SourceFlagz))
}

// localSources are the sources on this host, in the order auto tries them: the running process,
// then each run mode's file in registration order (the manifest, the unit).
func localSources(p paths.Paths) []SourceKind {
	kinds := []SourceKind{SourceProcess}
	for _, src := range runmode.Sources(p, Component) {
		kinds = append(kinds, SourceKind(src.Name))
	}
	return kinds
}

// load reads the source o.Source names; auto takes the process, else the manifest, else the unit.
func (o *Options) load(ctx context.Context) (*Invocation, error) {
	var looked []string
	try := func(kind SourceKind) (*Invocation, error) {
		inv, err := o.loadOne(ctx, kind)
		if where, ok := isAbsent(err); ok {
			looked = append(looked, where)
			return nil, nil
		}
		return inv, err
	}
	if o.Source != SourceAuto || o.PID != 0 {
		// --pid names a process: falling back to a file would answer another question.
		kind := SourceKind(o.Source)
		if o.Source == SourceAuto {
			kind = SourceProcess
		}
		inv, err := try(kind)
		if inv == nil && err == nil {
			return nil, &NotFoundError{Looked: looked}
		}
		return inv, err
	}
	var denied *PermissionError
	for _, kind := range localSources(o.Paths) {
		inv, err := try(kind)
		if kind == SourceProcess && errors.As(err, &denied) {
			// The process exists but is unreadable: say so, and still show what the files say.
			fmt.Fprintf(o.Err, "warning: %v; showing the next source instead\n", err)
			looked = append(looked, "running processes: "+err.Error())
			continue
		}
		if err != nil {
			return nil, err
		}
		if inv != nil {
			fmt.Fprintf(o.Err, "[inspect] Using %s (%s)\n", inv.Label(), inv.Location)
			return inv, nil
		}
	}
	if denied != nil {
		return nil, denied
	}
	return nil, &NotFoundError{Looked: append(looked,
		"a live server's /flagz is not tried automatically: use --source flagz (with --kubeconfig)")}
}

func (o *Options) loadOne(ctx context.Context, kind SourceKind) (*Invocation, error) {
	switch kind {
	case SourceProcess:
		return o.loadProcess()
	case SourceFlagz:
		kc := o.Kubeconfig
		if kc == "" {
			kc = o.Paths.Kubeconfig("admin.conf")
		}
		if _, err := os.Stat(kc); errors.Is(err, fs.ErrNotExist) {
			return nil, &absentError{FlagzPath + " of the server in kubeconfig " + kc + " (no such file; pass --kubeconfig)"}
		}
		cfg, err := RESTConfigFromKubeconfig(kc)
		if err != nil {
			return nil, err
		}
		logx.ConfigureClient(cfg, o.Err) // -v 2 logs the /flagz request
		return LoadFlagz(ctx, cfg, o.Catalog)
	}
	// The file a run mode runs kube-apiserver from: its manifest, its unit.
	for _, src := range runmode.Sources(o.Paths, Component) {
		if SourceKind(src.Name) != kind {
			continue
		}
		if _, err := os.Stat(src.Path); errors.Is(err, fs.ErrNotExist) {
			return nil, &absentError{src.Path + " (no such file)"}
		}
		return LoadSource(src, o.Catalog)
	}
	return nil, fmt.Errorf("unknown source %q", kind)
}

func (o *Options) loadProcess() (*Invocation, error) {
	s := ProcScanner{ProcDir: o.ProcDir, Root: o.Paths, ExtraComms: o.ExtraComms, readHook: o.readHook}
	res, err := s.Scan()
	if err != nil {
		return nil, err
	}
	if o.PID != 0 {
		for _, p := range append(res.Processes, res.OutsideRoot...) {
			if p.PID == o.PID {
				return p.Invocation(o.Catalog), nil
			}
		}
		for _, d := range res.Denied {
			if d.PID == o.PID {
				return nil, &PermissionError{Denied: []DeniedProcess{d}}
			}
		}
		return nil, &absentError{fmt.Sprintf("process %d (%s): no such kube-apiserver process", o.PID, o.ProcDir)}
	}
	// Unreadable candidates cannot be matched to a root dir, so they count against a single
	// readable process only on the real root.
	var denied []DeniedProcess
	if o.Paths.IsRealRoot() || len(res.Processes) == 0 {
		denied = res.Denied
	}
	switch {
	case len(res.Processes)+len(denied) > 1:
		return nil, &MultipleProcessesError{Processes: res.Processes, Denied: denied}
	case len(res.Processes) == 1:
		return res.Processes[0].Invocation(o.Catalog), nil
	case len(denied) > 0:
		return nil, &PermissionError{Denied: denied}
	}
	where := fmt.Sprintf("running processes (%s: %d scanned, none is kube-apiserver", o.ProcDir, res.Scanned)
	if n := len(res.OutsideRoot); n > 0 {
		where += fmt.Sprintf("; %d kube-apiserver process(es) ignored because their command line names no file under %s", n, o.Paths.Root())
	}
	if res.Unreadable > 0 {
		where += fmt.Sprintf("; %d process(es) unreadable: permission denied, try sudo", res.Unreadable)
	}
	return nil, &absentError{where + ")"}
}

// runDiff compares every local source present.
func (o *Options) runDiff() error {
	var (
		invs   []*Invocation
		looked []string
	)
	for _, kind := range localSources(o.Paths) {
		inv, err := o.loadOne(context.Background(), kind)
		if where, ok := isAbsent(err); ok {
			looked = append(looked, where)
			continue
		}
		if err != nil {
			return err
		}
		invs = append(invs, inv)
	}
	switch len(invs) {
	case 0:
		return &NotFoundError{Looked: looked}
	case 1:
		fmt.Fprintf(o.Err, "only one source has a kube-apiserver (%s, %s); nothing to compare\n", invs[0].Label(), invs[0].Location)
		return nil
	}
	var labels []string
	for _, inv := range invs {
		labels = append(labels, inv.Label())
	}
	diffs := Diff(invs)
	if len(diffs) == 0 {
		fmt.Fprintf(o.Out, "no differences: %s agree on all %d flags\n", strings.Join(labels, ", "), len(invs[0].values()))
		return nil
	}
	if err := RenderDiff(o.Out, invs, diffs); err != nil {
		return err
	}
	return &DiffError{Sources: labels, Differences: diffs}
}
