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

	"github.com/spf13/cobra"
)

// Phase is one named step. A phase with sub-phases runs them in order; Run, when set, runs before
// them.
type Phase[D any] struct {
	Name    string
	Aliases []string
	Short   string
	Run     func(ctx context.Context, data D) error
	Phases  []Phase[D]
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
	// Log receives those notes; nil discards them.
	Log io.Writer
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

// Run runs every phase not in skip. A skipped parent skips its sub-phases.
func (r *Runner[D]) Run(ctx context.Context, data D, skip []string) error {
	if err := r.ValidateSkip(skip); err != nil {
		return err
	}
	skipped := map[string]bool{}
	for _, s := range skip {
		if slices.Contains(r.KubeadmOnly, s) && !skipped[s] && r.Log != nil {
			fmt.Fprintf(r.Log, "[%s] Skipping phase %s: kubestrap has no such phase yet, so there is nothing to skip\n", r.Command, s)
		}
		skipped[s] = true
	}
	return runPhases(ctx, data, "", r.Phases, skipped)
}

func runPhases[D any](ctx context.Context, data D, prefix string, ps []Phase[D], skipped map[string]bool) error {
	for _, p := range ps {
		full := prefix + p.Name
		if isSkipped(skipped, prefix, p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.Run != nil {
			if err := p.Run(ctx, data); err != nil {
				return fmt.Errorf("phase %s: %w", full, err)
			}
		}
		if err := runPhases(ctx, data, full+"/", p.Phases, skipped); err != nil {
			return err
		}
		if p.Finish != nil {
			if err := p.Finish(ctx, data); err != nil {
				return fmt.Errorf("phase %s: %w", full, err)
			}
		}
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
		phaseCmd.AddCommand(phaseCommand(p, data, addFlags))
	}
	return phaseCmd
}

func phaseCommand[D any](p Phase[D], data DataFunc[D], addFlags func(*cobra.Command)) *cobra.Command {
	run := func(phases []Phase[D]) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			d, err := data(cmd, args)
			if err != nil {
				return err
			}
			return runPhases(cmd.Context(), d, "", phases, nil)
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
			c.AddCommand(phaseCommand(sub, data, addFlags))
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
