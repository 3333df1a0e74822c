package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Output formats of Render.
const (
	OutputTable = "table"
	OutputYAML  = "yaml"
	OutputJSON  = "json"
	OutputArgs  = "args"
)

// Report is the document printed by -o yaml and -o json. Its schema is stable: fields are only
// ever added, never renamed or removed (docs/show-apiserver-options.md).
//
//	source: process      # process | manifest | systemd | flagz
//	pid: 1234            # the process id; 0 unless source is process
//	binary: /var/lib/kubestrap/bin/kube-apiserver
//	                     # the words before the flags (argv[0], "kubestrap kube-apiserver", the
//	                     # manifest's command[0] or image, ExecStart's program); for flagz the
//	                     # server URL
//	location: /proc/1234/cmdline   # optional: the file or URL read
//	flags:               # sorted by name; a repeated flag appears once per occurrence, in order
//	- name: secure-port  # without dashes, "_" normalised to "-"
//	  value: "6443"      # always a string; "true" for a flag given without a value
//	  explicit: true     # set by the source; false for a default added by --all and for a
//	                     # /flagz value equal to the catalog default
//	  origin: manifest   # optional: where the value came from (the table's SOURCE column)
//	  bare: true         # optional: given as --name, without a value
//	  unknown: true      # optional: not an option of the bundled kube-apiserver
//	  default: "6443"    # optional, with --all: the bundled default (omitted when empty)
//	  help: ...          # optional, with --all: the first sentence of the option's help
type Report struct {
	Source   SourceKind   `json:"source"`
	PID      int          `json:"pid"`
	Binary   string       `json:"binary"`
	Location string       `json:"location,omitempty"`
	Flags    []ReportFlag `json:"flags"`
}

// ReportFlag is one entry of Report.Flags.
type ReportFlag struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Explicit bool   `json:"explicit"`
	Origin   string `json:"origin,omitempty"`
	Bare     bool   `json:"bare,omitempty"`
	Unknown  bool   `json:"unknown,omitempty"`
	Default  string `json:"default,omitempty"`
	Help     string `json:"help,omitempty"`
}

// NewReport builds the -o yaml|json document of inv.
func NewReport(inv *Invocation) Report {
	r := Report{Source: inv.Source, PID: inv.PID, Binary: inv.Binary, Location: inv.Location, Flags: []ReportFlag{}}
	for _, f := range inv.sortedFlags() {
		r.Flags = append(r.Flags, ReportFlag{
			Name: f.Name, Value: f.Value, Explicit: f.Explicit, Origin: f.Origin,
			Bare: f.Bare, Unknown: f.Unknown, Default: f.Default, Help: f.Help,
		})
	}
	return r
}

// Render prints inv in one of the output formats. withHelp adds the HELP column to the table
// (--all).
func Render(w io.Writer, inv *Invocation, format string, withHelp bool) error {
	switch format {
	case OutputTable, "":
		return renderTable(w, inv, withHelp)
	case OutputArgs:
		// Command-line order and the source's own spelling, so the lines can be passed back to
		// kube-apiserver (and equal /proc/PID/cmdline's words for the process source).
		for _, f := range inv.Flags {
			if _, err := fmt.Fprintln(w, f.Arg()); err != nil {
				return err
			}
		}
		return nil
	case OutputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		// Defaults such as "<nil>" and help texts are read by people and jq, not embedded in HTML.
		enc.SetEscapeHTML(false)
		return enc.Encode(NewReport(inv))
	case OutputYAML:
		b, err := yaml.Marshal(NewReport(inv))
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q (want table, yaml, json or args)", format)
}

func renderTable(w io.Writer, inv *Invocation, withHelp bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if withHelp {
		fmt.Fprintln(tw, "FLAG\tVALUE\tSOURCE\tHELP")
	} else {
		fmt.Fprintln(tw, "FLAG\tVALUE\tSOURCE")
	}
	for _, f := range inv.sortedFlags() {
		name := f.Name
		if f.Unknown {
			name += " (unknown)"
		}
		if withHelp {
			help := f.Help
			if help == "" {
				help = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, cell(f.Value), f.Origin, help)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", name, cell(f.Value), f.Origin)
		}
	}
	return tw.Flush()
}

// cell keeps one table row on one line: values with control characters are quoted, and an empty
// value is shown as "" so that the column does not look missing.
func cell(s string) string {
	if s == "" || strings.ContainsAny(s, "\t\n\r") {
		return strconv.Quote(s)
	}
	return s
}

// AddDefaults appends, for --all, every catalog option the invocation does not set, with its
// default and help, and fills Default and Help of the options it sets.
func AddDefaults(inv *Invocation, cat Catalog) {
	set := map[string]bool{}
	for i := range inv.Flags {
		f := &inv.Flags[i]
		set[f.Name] = true
		if fi, ok := cat[f.Name]; ok {
			f.Default, f.Help = fi.Default, OneLine(fi.Usage)
		}
	}
	names := make([]string, 0, len(cat))
	for n := range cat {
		if !set[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fi := cat[n]
		inv.Flags = append(inv.Flags, Flag{
			Name: n, Value: fi.Default, Origin: "default",
			Default: fi.Default, Help: OneLine(fi.Usage),
		})
	}
}

// OneLine shortens a flag's help to its first sentence (at most 100 characters), for tables.
func OneLine(usage string) string {
	s := strings.TrimSpace(usage)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	if r := []rune(s); len(r) > 100 {
		s = string(r[:99]) + "…"
	}
	return s
}

// Explain prints, for each named option, its type, default, help and the value inv gives it. inv
// may be nil when no source was found; cat may be nil when the catalog is unavailable. Names the
// catalog does not know and inv does not set are returned as an error after the others print.
func Explain(w io.Writer, names []string, inv *Invocation, cat Catalog, noSource string) error {
	var unknown []string
	for i, raw := range names {
		name := normalizeName(strings.TrimLeft(raw, "-"))
		fi, known := cat[name]
		var cur []Flag
		if inv != nil {
			for _, f := range inv.Flags {
				if f.Name == name {
					cur = append(cur, f)
				}
			}
		}
		if cat != nil && !known && len(cur) == 0 {
			unknown = append(unknown, "--"+name)
			continue
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "--%s\n", name)
		switch {
		case cat == nil:
			fmt.Fprintln(w, "  help:    unavailable: this kubestrap build has no kube-apiserver flag catalog")
		case !known:
			fmt.Fprintln(w, "  help:    unknown: the bundled kube-apiserver has no such option")
		default:
			fmt.Fprintf(w, "  type:    %s\n", fi.Type)
			fmt.Fprintf(w, "  default: %s\n", cell(fi.Default))
		}
		switch {
		case inv == nil:
			fmt.Fprintf(w, "  current: unknown (%s)\n", noSource)
		case len(cur) == 0:
			fmt.Fprintf(w, "  current: not set in %s: the default applies\n", inv.Label())
		default:
			for _, f := range cur {
				fmt.Fprintf(w, "  current: %s (%s)\n", cell(f.Value), f.Origin)
			}
		}
		if known {
			fmt.Fprintf(w, "  help:    %s\n", strings.ReplaceAll(strings.TrimSpace(fi.Usage), "\n", "\n           "))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown kube-apiserver option(s) %s: see --all for the full list", strings.Join(unknown, ", "))
	}
	return nil
}
