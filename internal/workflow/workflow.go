// Package workflow is the phase runner behind init, join and reset: an ordered list of named
// phases (with optional sub-phases), each a plain function over shared data. It runs them in order
// honouring --skip-phases, prints nothing of its own but "[phase]" context on failure, and exposes
// every phase as a "phase <name> [sub]" subcommand, as kubeadm's workflow runner does.
package workflow

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/logx"
)

// Phase is one named step. A phase with sub-phases runs them in order; Run, when set, runs before
// them. What a phase does when, and how a group runs its members, is declared here (RunIf,
// RunChildren) rather than kept in flags of the shared data.
type Phase[D any] struct {
	Name    string
	Aliases []string
	Short   string
	// RunIf, when set, decides whether the phase runs at all: it is asked just before the phase
	// would run, whether it runs in a whole run, as a member of a group or alone ("phase certs
	// ca"). On false the phase and its sub-phases are skipped; a non-empty reason is printed to
	// the runner's Log, each distinct reason once per command, so that several phases skipped
	// for one cause share one note. WholeRun tells it whether the command runs every phase.
	RunIf func(ctx context.Context, data D) (run bool, reason string)
	Run   func(ctx context.Context, data D) error
	// RunChildren, when set, does the work of the sub-phases together when the phase runs as a
	// group (in a whole run, or as "phase <name>" / "phase <name> all"): it receives the names of
	// the sub-phases that are selected (not skipped, and allowed by their RunIf), in order, and
	// their own Run is not called, e.g. so that certificates are generated in parallel. A
	// sub-phase invoked alone ("phase certs ca") runs its own Run. Meant for groups of leaf
	// phases: the members' sub-phases and Finish are not run.
	RunChildren func(ctx context.Context, data D, selected []string) error
	Phases      []Phase[D]
	// Finish runs after all sub-phases when the phase runs as a whole (in a full run, or as
	// "phase <name>" / "phase <name> all"), not when a single sub-phase is invoked: it is where a
	// group acts on what its sub-phases wrote, e.g. starting the components whose files they wrote.
	Finish func(ctx context.Context, data D) error
	// ArgsUsage, when set, lets the phase subcommand take positional arguments (e.g. join's
	// endpoint); they are handed to the data builder.
	ArgsUsage string
}

// Runner runs an ordered list of phases over data of type D.
type Runner[D any] struct {
	// Command names the workflow ("init") in messages.
	Command string
	Phases  []Phase[D]
	// KubeadmOnly are phase paths of kubeadm's workflow for the same command that kubestrap has
	// no counterpart for yet ("addon/coredns"). Skipping one is accepted, so that a kubeadm
	// configuration or command line works unchanged, and only prints a note: there is nothing
	// to skip.
	KubeadmOnly []string
	// Log receives those notes and the reasons RunIf gives for skipping; nil discards them.
	Log io.Writer
	// BeforePhase, when set, is called before each phase that --skip-phases does not skip (and
	// before its RunIf), with the phase's path ("certs", "certs/ca"): a hook for what a command
	// does once at a point of its workflow, e.g. init saving its configuration after preflight.
	BeforePhase func(ctx context.Context, data D, path string) error
}

type wholeRunKey struct{}

// WholeRun reports whether ctx is that of a whole run of a command (Runner.Run: "kubestrap
// init"), as opposed to a "phase" subcommand, which always does its phase's work when asked.
func WholeRun(ctx context.Context) bool {
	whole, _ := ctx.Value(wholeRunKey{}).(bool)
	return whole
}

// run is the state of one command's run of phases.
type run[D any] struct {
	r       *Runner[D]
	skipped map[string]bool
	noted   map[string]bool // reasons already printed
	start   time.Time       // of the run, for the -v 1 phase timings
}

// Names lists every phase path ("certs", "certs/ca", ...) in run order.
func (r *Runner[D]) Names() []string {
	var out []string
	var walk func(prefix string, ps []Phase[D])
	walk = func(prefix string, ps []Phase[D]) {
		for _, p := range ps {
			full := prefix + p.Name
			out = append(out, full)
			walk(full+"/", p.Phases)
		}
	}
	walk("", r.Phases)
	return out
}

// ValidNames lists every name a skip list may hold: the phase paths in run order, then the
// aliases, then the kubeadm-only names. It is the one list behind both the runner's own check
// and config validation of skipPhases.
func (r *Runner[D]) ValidNames() []string {
	out := r.Names()
	var walk func(prefix string, ps []Phase[D], aliased bool)
	walk = func(prefix string, ps []Phase[D], aliased bool) {
		for _, p := range ps {
			for i, n := range p.names() {
				if aliased || i > 0 {
					out = append(out, prefix+n)
				}
				walk(prefix+n+"/", p.Phases, aliased || i > 0)
			}
		}
	}
	walk("", r.Phases, false)
	for _, n := range r.KubeadmOnly {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// ValidateSkip checks that every name in skip is a known phase path, alias or kubeadm-only
// phase, and says which names are valid when one is not.
func (r *Runner[D]) ValidateSkip(skip []string) error {
	valid := r.ValidNames()
	for _, s := range skip {
		if !slices.Contains(valid, s) {
			cmd := r.Command
			if cmd == "" {
				cmd = "this command"
			}
			return fmt.Errorf("unknown phase %q to skip; valid phases for %s are: %s", s, cmd, strings.Join(valid, ", "))
		}
	}
	return nil
}

// MergeSkip is what a full run of init, join or reset skips: the configuration file's skipPhases,
// then the --skip-phases given, each name once. Both apply (neither replaces the other), so a
// phase named in either is skipped; the result is a new slice.
func MergeSkip(fromConfig, fromFlag []string) []string {
	out := make([]string, 0, len(fromConfig)+len(fromFlag))
	for _, s := range slices.Concat(fromConfig, fromFlag) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Run runs every phase not in skip, as a whole run (see WholeRun). A skipped parent skips its
// sub-phases.
func (r *Runner[D]) Run(ctx context.Context, data D, skip []string) error {
	if err := r.ValidateSkip(skip); err != nil {
		return err
	}
	skipped, canonical := map[string]bool{}, r.canonicalPaths()
	for _, s := range skip {
		if slices.Contains(r.KubeadmOnly, s) && !skipped[s] && r.Log != nil {
			fmt.Fprintf(r.Log, "[%s] Skipping phase %s: kubestrap has no such phase yet, so there is nothing to skip\n", r.Command, s)
		}
		if c, ok := canonical[s]; ok {
			s = c // "certificates/ca" skips "certs/ca"
		}
		skipped[s] = true
	}
	ctx = context.WithValue(ctx, wholeRunKey{}, true)
	return r.newRun(skipped).phases(ctx, data, "", r.Phases)
}

// canonicalPaths maps every path a skip list may use for a phase, through the names or aliases
// of the phase and its parents ("certificates/ca"), to the phase's own path ("certs/ca").
func (r *Runner[D]) canonicalPaths() map[string]string {
	out := map[string]string{}
	var walk func(prefixes []string, canonPrefix string, ps []Phase[D])
	walk = func(prefixes []string, canonPrefix string, ps []Phase[D]) {
		for _, p := range ps {
			canon := canonPrefix + p.Name
			var next []string
			for _, pre := range prefixes {
				for _, n := range p.names() {
					out[pre+n] = canon
					next = append(next, pre+n+"/")
				}
			}
			walk(next, canon+"/", p.Phases)
		}
	}
	walk([]string{""}, "", r.Phases)
	return out
}

func (r *Runner[D]) newRun(skipped map[string]bool) *run[D] {
	return &run[D]{r: r, skipped: skipped, noted: map[string]bool{}, start: time.Now()}
}

// selected reports whether p, at prefix, runs: not skipped by name, BeforePhase done, and
// allowed by its RunIf (whose reason is then printed once).
func (x *run[D]) selected(ctx context.Context, data D, prefix string, p Phase[D]) (bool, error) {
	if isSkipped(x.skipped, prefix, p) {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	full := prefix + p.Name
	if x.r.BeforePhase != nil {
		if err := x.r.BeforePhase(ctx, data, full); err != nil {
			return false, fmt.Errorf("phase %s: %w", full, err)
		}
	}
	if p.RunIf == nil {
		return true, nil
	}
	ok, reason := p.RunIf(ctx, data)
	if !ok && reason != "" && !x.noted[reason] {
		x.noted[reason] = true
		if x.r.Log != nil {
			fmt.Fprintln(x.r.Log, reason)
		}
	}
	return ok, nil
}

func (x *run[D]) phases(ctx context.Context, data D, prefix string, ps []Phase[D]) error {
	for _, p := range ps {
		full := prefix + p.Name
		ok, err := x.selected(ctx, data, prefix, p)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		// -v 1 traces each phase: when it started in the run and how long it took, so that
		// where a command spends its time can be read off any run.
		began := time.Now()
		logx.Printf(x.r.Log, logx.LevelFiles, "phase %s started at +%s", full, began.Sub(x.start).Round(time.Millisecond))
		if p.Run != nil {
			if err := p.Run(ctx, data); err != nil {
				return fmt.Errorf("phase %s: %w", full, err)
			}
		}
		if p.RunChildren != nil {
			var names []string
			for _, c := range p.Phases {
				ok, err := x.selected(ctx, data, full+"/", c)
				if err != nil {
					return err
				}
				if ok {
					names = append(names, c.Name)
				}
			}
			if err := p.RunChildren(ctx, data, names); err != nil {
				return fmt.Errorf("phase %s: %w", full, err)
			}
		} else if err := x.phases(ctx, data, full+"/", p.Phases); err != nil {
			return err
		}
		if p.Finish != nil {
			if err := p.Finish(ctx, data); err != nil {
				return fmt.Errorf("phase %s: %w", full, err)
			}
		}
		logx.Printf(x.r.Log, logx.LevelFiles, "phase %s done after %s", full, time.Since(began).Round(time.Millisecond))
	}
	return nil
}

func isSkipped(skipped map[string]bool, prefix string, p interface{ names() []string }) bool {
	for _, n := range p.names() {
		if skipped[prefix+n] {
			return true
		}
	}
	return false
}

func (p Phase[D]) names() []string { return append([]string{p.Name}, p.Aliases...) }

// DataFunc builds the shared data for a command run; args are the command's positional arguments.
type DataFunc[D any] func(cmd *cobra.Command, args []string) (D, error)

// PhaseCommands returns a "phase" command whose subcommands run single phases: "phase certs"
// runs all of certs, "phase certs all" too, "phase certs ca" only ca. addFlags adds the parent
// command's flags to each generated subcommand so a phase sees the same options as a full run.
func (r *Runner[D]) PhaseCommands(data DataFunc[D], addFlags func(*cobra.Command)) *cobra.Command {
	phaseCmd := &cobra.Command{
		Use:   "phase",
		Short: "Use this command to invoke a single phase of the workflow",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	for _, p := range r.Phases {
		phaseCmd.AddCommand(r.phaseCommand(p, data, addFlags))
	}
	return phaseCmd
}

func (r *Runner[D]) phaseCommand(p Phase[D], data DataFunc[D], addFlags func(*cobra.Command)) *cobra.Command {
	run := func(phases []Phase[D]) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			d, err := data(cmd, args)
			if err != nil {
				return err
			}
			return r.newRun(nil).phases(cmd.Context(), d, "", phases)
		}
	}
	use := p.Name
	args := cobra.NoArgs
	if p.ArgsUsage != "" {
		use += " " + p.ArgsUsage
		args = cobra.ArbitraryArgs
	}
	c := &cobra.Command{
		Use:     use,
		Aliases: p.Aliases,
		Short:   p.Short,
		Args:    args,
		RunE:    run([]Phase[D]{p}),
	}
	if addFlags != nil {
		addFlags(c)
	}
	if len(p.Phases) > 0 {
		all := &cobra.Command{
			Use:   "all",
			Short: "Run all " + p.Name + " phases",
			Args:  args,
			RunE:  run([]Phase[D]{p}),
		}
		if addFlags != nil {
			addFlags(all)
		}
		c.AddCommand(all)
		for _, sub := range p.Phases {
			// A sub-phase runs its parent's own step too only when the parent has no step of its
			// own to share; parents here are pure groups.
			c.AddCommand(r.phaseCommand(sub, data, addFlags))
		}
	}
	return c
}

// Help renders the phase list for a command's long help, kubeadm-style.
func (r *Runner[D]) Help() string {
	var b strings.Builder
	b.WriteString("The workflow runs these phases in order:\n\n")
	var walk func(indent string, ps []Phase[D])
	walk = func(indent string, ps []Phase[D]) {
		for _, p := range ps {
			fmt.Fprintf(&b, "%s%-*s %s\n", indent, 28-len(indent), p.Name, p.Short)
			walk(indent+"  /", p.Phases)
		}
	}
	walk("", r.Phases)
	return b.String()
}
