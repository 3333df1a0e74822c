package inspect

import "strings"

// token is one command-line word with the place it came from, so that a flag whose value was
// substituted from a systemd Environment= line can name that line rather than the unit.
type token struct {
	text   string
	origin string
}

// ParseArgs parses kube-apiserver arguments (without argv[0]) the way its flag set (pflag) does,
// returning the flags in command-line order and the words that are not flags. Every flag gets
// origin as its Origin.
//
// "--name value" is ambiguous without knowing the flag: pflag consumes the next word for every
// flag that is not boolean, even one starting with "-". With a catalog, ParseArgs does exactly
// that; for flags it does not know (or without a catalog) it takes the next word as the value
// only when it does not start with "-", which is right for every flag a running server accepted.
func ParseArgs(args []string, cat Catalog, origin string) (flags []Flag, extra []string) {
	toks := make([]token, len(args))
	for i, a := range args {
		toks[i] = token{text: a, origin: origin}
	}
	return parseTokens(toks, cat)
}

func parseTokens(toks []token, cat Catalog) (flags []Flag, extra []string) {
	for i := 0; i < len(toks); i++ {
		a := toks[i].text
		if a == "--" {
			// pflag stops parsing here: everything after is an argument.
			for _, t := range toks[i+1:] {
				extra = append(extra, t.text)
			}
			break
		}
		if len(a) < 2 || a[0] != '-' || a == "--" {
			extra = append(extra, a)
			continue
		}
		prefix := "-"
		if a[1] == '-' {
			prefix = "--"
		}
		raw, value, hasValue := strings.Cut(a[len(prefix):], "=")
		f := Flag{
			Name:     normalizeName(raw),
			Value:    value,
			Origin:   toks[i].origin,
			Explicit: true,
			prefix:   prefix,
			rawName:  raw,
		}
		if !hasValue && takesValue(f.Name, toks[i+1:], cat) {
			i++
			f.Value = toks[i].text
			// The value word is what was configured; it may come from a different place
			// (an environment variable) than the flag name.
			f.Origin = toks[i].origin
		} else if !hasValue {
			f.Bare = true
			f.Value = "true"
		}
		flags = append(flags, f)
	}
	return flags, extra
}

// takesValue decides whether a flag written without "=" consumes the following word.
func takesValue(name string, rest []token, cat Catalog) bool {
	if len(rest) == 0 {
		return false
	}
	if fi, ok := cat[name]; ok {
		return fi.Type != "bool"
	}
	next := rest[0].text
	return next == "" || next[0] != '-'
}
