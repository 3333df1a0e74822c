// Package workflow is the phase runner behind init, join and reset: an ordered list of named
// phases (with optional sub-phases), each a plain function over shared data. It runs them in order
// honouring --skip-phases, prints nothing of its own but "[phase]" context on failure, and exposes
// every phase as a "phase <name> [sub]" subcommand, as kubeadm's workflow runner does.
package workflow

import (
	"context"
	"fmt"
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
	Phases []Phase[D]
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

// ValidateSkip checks that every name in skip is a known phase path (or alias).
func (r *Runner[D]) ValidateSkip(skip []string) error {
	known := map[string]bool{}
	var walk func(prefix string, ps []Phase[D])
	walk = func(prefix string, ps []Phase[D]) {
		for _, p := range ps {
			for _, n := range append([]string{p.Name}, p.Aliases...) {
				known[prefix+n] = true
				walk(prefix+n+"/", p.Phases)
			}
		}
	}
	walk("", r.Phases)
	for _, s := range skip {
		if !known[s] {
			return fmt.Errorf("unknown phase %q in --skip-phases; known phases: %s", s, strings.Join(r.Names(), ", "))
		}
	}
	return nil
}

// Run runs every phase not in skip. A skipped parent skips its sub-phases.
func (r *Runner[D]) Run(ctx context.Context, data D, skip []string) error {
	if err := r.ValidateSkip(skip); err != nil {
		return err
	}
	skipped := map[string]bool{}
	for _, s := range skip {
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
