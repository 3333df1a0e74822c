// Package inspect owns show-apiserver-options: it finds out which options a node's kube-apiserver
// runs with, from four independent sources (the running process in /proc, the static pod manifest,
// the systemd unit with its drop-ins and environment, and the live server's /flagz endpoint), says
// where each value came from, compares the sources, and renders the answer as a table, YAML, JSON
// or a re-usable argument list. It knows kube-apiserver's option catalog only through the FlagInfo
// list its caller passes in, so it never links the bundled control plane and its tests stay fast.
package inspect

import (
	"fmt"
	"sort"
	"strings"
)

// Component is the program whose options this package inspects; it is also the process name,
// the manifest's container name and the unit's base name.
const Component = "kube-apiserver"

// SourceKind names one place the options can be read from.
type SourceKind string

// The sources of every host; each run mode adds the file it runs kube-apiserver from
// (runmode.Source: "manifest", "systemd").
const (
	SourceProcess SourceKind = "process"
	SourceFlagz   SourceKind = "flagz"
)

// FlagInfo describes one option of the bundled kube-apiserver, as its own flag set declares it.
// Type is pflag's Value.Type(); "bool" marks the flags that take no separate value argument,
// which is what command-line parsing needs to know.
type FlagInfo struct {
	Name, Type, Default, Usage string
}

// Catalog indexes the bundled kube-apiserver's options by name. A nil Catalog means the caller
// has none: parsing then falls back to heuristics and nothing is marked unknown.
type Catalog map[string]FlagInfo

// NewCatalog indexes infos; it returns nil for an empty list so that "no catalog" has one spelling.
func NewCatalog(infos []FlagInfo) Catalog {
	if len(infos) == 0 {
		return nil
	}
	c := make(Catalog, len(infos))
	for _, fi := range infos {
		c[fi.Name] = fi
	}
	return c
}

// Lookup returns the catalog entry for name, which may carry dashes or pflag's "_" spelling.
func (c Catalog) Lookup(name string) (FlagInfo, bool) {
	fi, ok := c[normalizeName(strings.TrimLeft(name, "-"))]
	return fi, ok
}

// Flag is one option as a source reports it.
type Flag struct {
	// Name is the option's name without dashes, normalised the way kube-apiserver's flag set
	// does ("_" becomes "-"), so that sources spelling it differently still compare equal.
	Name string
	// Value is the value given; for a flag given without one (--flag) it is the implied "true".
	Value string
	// Bare is set for a flag given without a value.
	Bare bool
	// Origin says where the value came from: "process 1234", "manifest", "unit",
	// "unit drop-in 10-foo.conf", "unit EnvironmentFile /etc/default/x", "flagz" or "default".
	Origin string
	// Explicit is false only for values nobody set: catalog defaults added by --all, and /flagz
	// values equal to the catalog default.
	Explicit bool
	// Unknown marks a flag the catalog does not list (only when a catalog is available).
	Unknown bool
	// Default and Help are filled from the catalog when the caller asks for them (--all).
	Default string
	Help    string

	// prefix and rawName keep the exact spelling used on the command line ("-" or "--", and the
	// name before normalisation) so that -o args reproduces the original tokens.
	prefix  string
	rawName string
}

// Arg renders the flag as one command-line token, in the spelling the source used: "--name=value",
// or "--name" for a flag given without a value.
func (f Flag) Arg() string {
	prefix, name := f.prefix, f.rawName
	if prefix == "" {
		prefix = "--"
	}
	if name == "" {
		name = f.Name
	}
	if f.Bare {
		return prefix + name
	}
	return prefix + name + "=" + f.Value
}

// Invocation is kube-apiserver's command line as one source reports it.
type Invocation struct {
	Source SourceKind
	// PID is the process id for the process source, 0 otherwise.
	PID int
	// Binary is what runs the flags: the words before the first flag (argv[0], plus the
	// "kube-apiserver" subcommand of a `kubestrap kube-apiserver` invocation), the manifest's
	// command[0] or image, ExecStart's program, or the server URL for /flagz.
	Binary string
	// Location is the file or URL read, for messages.
	Location string
	// Flags are in command-line order (sorted by name for /flagz, which has no order).
	Flags []Flag
	// Extra holds arguments that are not flags; kube-apiserver refuses them, so they are reported,
	// not rendered.
	Extra []string

	// label is how a run mode's file source is named in tables ("manifest", "unit").
	label string
}

// Label names the source in tables and messages: "process 1234", "manifest", "unit", "flagz".
func (inv *Invocation) Label() string {
	if inv.Source == SourceProcess {
		return fmt.Sprintf("process %d", inv.PID)
	}
	if inv.label != "" {
		return inv.label
	}
	return string(inv.Source)
}

// values returns each flag's values in command-line order; repeated flags have several.
func (inv *Invocation) values() map[string][]string {
	m := make(map[string][]string, len(inv.Flags))
	for _, f := range inv.Flags {
		m[f.Name] = append(m[f.Name], f.Value)
	}
	return m
}

// markUnknown flags the options the catalog does not list.
func (inv *Invocation) markUnknown(cat Catalog) {
	if cat == nil {
		return
	}
	for i := range inv.Flags {
		_, ok := cat[inv.Flags[i].Name]
		inv.Flags[i].Unknown = !ok
	}
}

// sortedFlags returns the flags sorted by name; repeated flags keep their command-line order.
func (inv *Invocation) sortedFlags() []Flag {
	out := append([]Flag(nil), inv.Flags...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// normalizeName applies kube-apiserver's flag-name normalisation (component-base's
// WordSepNormalizeFunc): "_" and "-" are the same separator.
func normalizeName(name string) string {
	if strings.IndexByte(name, '_') < 0 {
		return name
	}
	return strings.ReplaceAll(name, "_", "-")
}
