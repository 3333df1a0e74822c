package inspect

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// notSet stands for a flag a source does not set, in diff tables.
const notSet = "(not set)"

// Difference is one flag on which the sources disagree. Values holds, per source (in the order
// of the invocations compared), the flag's values joined by " ; " for a repeated flag, or
// "(not set)".
type Difference struct {
	Name   string
	Values []string
}

// Diff compares the flags of several invocations and returns the differing flags, by name.
// A flag given without a value equals the same flag given "true".
func Diff(invs []*Invocation) []Difference {
	vals := make([]map[string][]string, len(invs))
	names := map[string]bool{}
	for i, inv := range invs {
		vals[i] = inv.values()
		for n := range vals[i] {
			names[n] = true
		}
	}
	var out []Difference
	for n := range names {
		d := Difference{Name: n}
		differ := false
		for i := range invs {
			v := notSet
			if vs, ok := vals[i][n]; ok {
				v = strings.Join(vs, " ; ")
			}
			if i > 0 && v != d.Values[0] {
				differ = true
			}
			d.Values = append(d.Values, v)
		}
		if differ {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DiffError reports that the sources disagree; the command exits 1 with it.
type DiffError struct {
	Sources     []string
	Differences []Difference
}

func (e *DiffError) Error() string {
	var parts []string
	for _, d := range e.Differences {
		var vs []string
		for i, v := range d.Values {
			vs = append(vs, e.Sources[i]+": "+v)
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", d.Name, strings.Join(vs, ", ")))
	}
	return fmt.Sprintf("the sources differ in %d flag(s): %s", len(e.Differences), strings.Join(parts, "; "))
}

// ExitCode makes the command exit 1, the conventional "differences found" status of diff tools.
func (e *DiffError) ExitCode() int { return 1 }

// RenderDiff prints the differing flags as a table with one column per source.
func RenderDiff(w io.Writer, invs []*Invocation, diffs []Difference) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"FLAG"}
	for _, inv := range invs {
		head = append(head, strings.ToUpper(inv.Label()))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, d := range diffs {
		row := []string{d.Name}
		for _, v := range d.Values {
			row = append(row, cell(v))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}
