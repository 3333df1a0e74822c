package systemd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/kubestrap/kubestrap/internal/paths"
)

// Word is one word of a service's command line with the place it came from ("unit", "unit
// drop-in 20-env.conf", "unit EnvironmentFile /etc/default/x"), so that a flag substituted from
// an Environment= line can be traced to that line rather than to the unit.
type Word struct {
	Text   string
	Origin string
}

// ExecStart is a service's command line as systemd runs it.
type ExecStart struct {
	// Path is the unit file (under the root).
	Path string
	// Words are the program and its arguments after drop-ins, prefixes and environment expansion.
	Words []Word
}

// Args are the words after the program.
func (e *ExecStart) Args() []string {
	if len(e.Words) == 0 {
		return nil
	}
	out := make([]string, 0, len(e.Words)-1)
	for _, w := range e.Words[1:] {
		out = append(out, w.Text)
	}
	return out
}

// envVar is one environment variable of the service and the place that set it.
type envVar struct {
	value  string
	origin string
}

type envFileRef struct {
	path     string // as written (a host path)
	optional bool   // "-" prefix: a missing file is not an error
	origin   string
}

// ReadExecStart reads the command line of service name ("etcd.service") from
// <root>/etc/systemd/system/<name> and its drop-ins (<name>.d/*.conf, applied in file-name order
// as systemd does), expanding ExecStart= with the service's Environment= and EnvironmentFile=
// variables. It is the one reader of kubestrap's units: reset and show-apiserver-options must see
// the same command line systemd runs. EnvironmentFile= paths are host paths, read under the root.
// A missing unit is returned as an error satisfying errors.Is(err, fs.ErrNotExist).
func ReadExecStart(p paths.Paths, name string) (*ExecStart, error) {
	unitPath := p.SystemdUnit(name)
	files := []string{unitPath}
	dropIns, err := filepath.Glob(filepath.Join(p.SystemdUnit(name+".d"), "*.conf"))
	if err != nil {
		return nil, err
	}
	sort.Slice(dropIns, func(i, j int) bool { return filepath.Base(dropIns[i]) < filepath.Base(dropIns[j]) })
	files = append(files, dropIns...)

	var (
		execStarts []Word
		envLines   []Word
		envFiles   []envFileRef
	)
	for i, path := range files {
		origin := "unit"
		if i > 0 {
			origin = "unit drop-in " + filepath.Base(path)
		}
		opts, err := readUnitFile(path)
		if err != nil {
			return nil, err
		}
		for _, o := range opts {
			if o.Section != "Service" {
				continue
			}
			// An empty assignment resets the list built so far: that is how a drop-in
			// replaces the unit's ExecStart= instead of adding a second one.
			switch o.Name {
			case "ExecStart":
				if strings.TrimSpace(o.Value) == "" {
					execStarts = nil
				} else {
					execStarts = append(execStarts, Word{Text: o.Value, Origin: origin})
				}
			case "Environment":
				if strings.TrimSpace(o.Value) == "" {
					envLines = nil
				} else {
					envLines = append(envLines, Word{Text: o.Value, Origin: origin})
				}
			case "EnvironmentFile":
				v := strings.TrimSpace(o.Value)
				if v == "" {
					envFiles = nil
					continue
				}
				ref := envFileRef{path: v, origin: origin}
				if strings.HasPrefix(v, "-") {
					ref.path, ref.optional = v[1:], true
				}
				envFiles = append(envFiles, ref)
			}
		}
	}
	switch {
	case len(execStarts) == 0:
		return nil, fmt.Errorf("unit %s has no ExecStart= (drop-ins: %s)", unitPath, dropInNames(dropIns))
	case len(execStarts) > 1:
		var from []string
		for _, e := range execStarts {
			from = append(from, e.Origin)
		}
		return nil, fmt.Errorf("unit %s has %d ExecStart= lines (from %s); a service runs one: a drop-in that replaces it must clear it first with an empty ExecStart=",
			unitPath, len(execStarts), strings.Join(from, ", "))
	}

	env := map[string]envVar{}
	for _, l := range envLines {
		words, err := splitWords(l.Text)
		if err != nil {
			return nil, fmt.Errorf("unit %s: Environment=%s (%s): %w", unitPath, l.Text, l.Origin, err)
		}
		for _, w := range words {
			if k, v, ok := strings.Cut(w, "="); ok && k != "" {
				env[k] = envVar{value: v, origin: l.Origin}
			}
		}
	}
	// systemd reads environment files when the service starts, after Environment=, and their
	// settings win.
	for _, ref := range envFiles {
		vars, err := readEnvFile(p.Host(ref.path))
		if err != nil {
			if ref.optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("unit %s: EnvironmentFile=%s (%s): %w", unitPath, ref.path, ref.origin, err)
		}
		for _, kv := range vars {
			env[kv[0]] = envVar{value: kv[1], origin: "unit EnvironmentFile " + ref.path}
		}
	}

	exec := execStarts[0]
	words, err := expandExecStart(exec, env, name)
	if err != nil {
		return nil, fmt.Errorf("unit %s: ExecStart= (%s): %w", unitPath, exec.Origin, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("unit %s: ExecStart= (%s) is empty after expansion", unitPath, exec.Origin)
	}
	return &ExecStart{Path: unitPath, Words: words}, nil
}

func dropInNames(files []string) string {
	if len(files) == 0 {
		return "none"
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	return strings.Join(names, ", ")
}

// readUnitFile parses one unit file or drop-in with go-systemd. systemd ignores comment lines
// inside a backslash continuation, go-systemd's lexer does not, so they are dropped first.
func readUnitFile(path string) ([]*unit.UnitOption, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var clean bytes.Buffer
	continued := false
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		trimmed := bytes.TrimSpace(line)
		if continued && len(trimmed) > 0 && (trimmed[0] == '#' || trimmed[0] == ';') {
			continue
		}
		continued = bytes.HasSuffix(trimmed, []byte(`\`))
		clean.Write(line)
	}
	opts, err := unit.DeserializeOptions(&clean)
	if err != nil {
		return nil, fmt.Errorf("unit file %s: %w", path, err)
	}
	for _, o := range opts {
		o.Value = joinContinuations(o.Value)
	}
	return opts, nil
}

// joinContinuations turns go-systemd's "\\\n" continuation markers into the single space
// systemd puts in their place.
func joinContinuations(v string) string {
	if !strings.Contains(v, "\\\n") {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(strings.ReplaceAll(v, "\\\n", " "))
}

// expandExecStart splits an ExecStart= command line into words following systemd.service(5):
// the program may carry the prefixes "@-:+!"; "${VAR}" is replaced in place by the variable's
// exact value, "$VAR" standing as a word of its own is replaced by the value split at whitespace,
// "$$" is a dollar, and undefined variables are empty. A ":" prefix turns substitution off.
// Words substituted from a variable carry the variable's origin.
func expandExecStart(exec Word, env map[string]envVar, unitName string) ([]Word, error) {
	line := expandSpecifiers(exec.Text, unitName)
	raw, err := splitWords(line)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, nil
	}
	prog := strings.TrimLeft(raw[0], "@-:+!")
	prefixes := raw[0][:len(raw[0])-len(prog)]
	raw[0] = prog
	if strings.Contains(prefixes, "@") {
		// "@prog argv0 args...": argv[0] is the second word, the program still runs the flags.
		if len(raw) > 1 {
			raw = append(raw[:1], raw[2:]...)
		}
	}
	substitute := !strings.Contains(prefixes, ":")

	out := []Word{{Text: raw[0], Origin: exec.Origin}}
	for _, w := range raw[1:] {
		if !substitute || !strings.Contains(w, "$") {
			out = append(out, Word{Text: w, Origin: exec.Origin})
			continue
		}
		if name, ok := wholeWordVar(w); ok {
			v := env[name]
			parts, err := splitWords(v.value)
			if err != nil {
				return nil, fmt.Errorf("$%s: %w", name, err)
			}
			for _, p := range parts {
				out = append(out, Word{Text: p, Origin: v.origin})
			}
			continue
		}
		text, origin := expandBraced(w, env)
		if origin == "" {
			origin = exec.Origin
		}
		out = append(out, Word{Text: text, Origin: origin})
	}
	return out, nil
}

// wholeWordVar recognises a word that is exactly "$NAME".
func wholeWordVar(w string) (string, bool) {
	if len(w) < 2 || w[0] != '$' || !isVarName(w[1:]) {
		return "", false
	}
	return w[1:], true
}

func isVarName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// expandBraced replaces ${NAME} and $$ inside a word; other dollars stay as written. It returns
// the origin of the last variable used, or "" when the word used none.
func expandBraced(w string, env map[string]envVar) (string, string) {
	var b strings.Builder
	origin := ""
	for i := 0; i < len(w); i++ {
		if w[i] != '$' || i+1 >= len(w) {
			b.WriteByte(w[i])
			continue
		}
		switch w[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(w[i+2:], '}')
			if end < 0 || !isVarName(w[i+2:i+2+end]) {
				b.WriteByte('$')
				continue
			}
			v := env[w[i+2:i+2+end]]
			b.WriteString(v.value)
			if v.origin != "" {
				origin = v.origin
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), origin
}

// expandSpecifiers resolves the unit specifiers that make sense for a plain (non-template)
// service; "%%" is a percent.
func expandSpecifiers(s, unitName string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'n':
			b.WriteString(unitName)
		case 'N', 'p':
			b.WriteString(strings.TrimSuffix(unitName, ".service"))
		default:
			// Host- and runtime-dependent specifiers (%H, %t, ...) are left as written.
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// splitWords splits a systemd value into words: whitespace separates, double and single quotes
// group (anywhere in a word), and backslash escapes are C-style.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote byte
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, in = c, true
		case quote == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\\' && quote != '\'':
			if i+1 >= len(s) {
				cur.WriteByte('\\')
				in = true
				continue
			}
			n, adv := unescape(s[i+1:])
			cur.WriteString(n)
			i += adv
			in = true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced quote %c in %q", quote, s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// unescape decodes the escape after a backslash and returns it with the number of bytes used.
func unescape(s string) (string, int) {
	switch s[0] {
	case 'a':
		return "\a", 1
	case 'b':
		return "\b", 1
	case 'f':
		return "\f", 1
	case 'n':
		return "\n", 1
	case 'r':
		return "\r", 1
	case 't':
		return "\t", 1
	case 'v':
		return "\v", 1
	case 's':
		return " ", 1
	case 'x':
		if len(s) >= 3 {
			if v, err := strconv.ParseUint(s[1:3], 16, 8); err == nil {
				return string([]byte{byte(v)}), 3
			}
		}
	}
	// \\, \", \', \$ and anything unknown: the character itself.
	return s[:1], 1
}

// readEnvFile parses an EnvironmentFile=: KEY=VALUE lines, "#" and ";" comments, values
// optionally quoted, a trailing backslash continuing a line. Pairs are returned in file order.
func readEnvFile(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out     [][2]string
		pending string
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := pending + sc.Text()
		pending = ""
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		if kv, ok := parseEnvLine(line); ok {
			out = append(out, kv)
		}
	}
	if pending != "" {
		if kv, ok := parseEnvLine(pending); ok {
			out = append(out, kv)
		}
	}
	return out, sc.Err()
}

func parseEnvLine(line string) ([2]string, bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' || line[0] == ';' {
		return [2]string{}, false
	}
	k, v, ok := strings.Cut(line, "=")
	k = strings.TrimSpace(k)
	if !ok || !isVarName(k) {
		return [2]string{}, false
	}
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		q := v[0]
		v = v[1 : len(v)-1]
		if q == '"' {
			var b strings.Builder
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\`$", v[i+1]) >= 0 {
					i++
				}
				b.WriteByte(v[i])
			}
			v = b.String()
		}
	}
	return [2]string{k, v}, true
}

// marker is the first-line comment of every unit file and drop-in kubestrap renders (see
// templates/): /etc/systemd/system is shared with the distribution and the operator, so a unit
// named like ours is only ours when it says so.
const marker = "Written by kubestrap"

// WrittenByKubestrap reports whether path is a regular file that kubestrap rendered.
func WrittenByKubestrap(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := f.Read(head)
	return bytes.Contains(head[:n], []byte(marker))
}
