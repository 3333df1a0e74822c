package systemd

import "strings"

// execArg quotes one word of an ExecStart= command line so that systemd passes it to the program
// unchanged: "%" would start a specifier and "$" an environment variable substitution, and
// whitespace, quotes, backslashes, an empty word or a lone ";" (a command separator) need quotes.
// Plain words, which are nearly all flags, stay unquoted for the reader.
func execArg(s string) string {
	s = strings.NewReplacer("%", "%%", "$", "$$").Replace(s)
	if s != "" && s != ";" && !strings.ContainsAny(s, " \t\n\"'\\") {
		return s
	}
	return quote(s)
}

// envAssignment renders one Environment= assignment. Environment= expands specifiers but not
// variables, so only "%" and the quoting characters need escaping.
func envAssignment(name, value string) string {
	return quote(strings.ReplaceAll(name+"="+value, "%", "%%"))
}

// pathValue escapes a path used as a whole setting value (EnvironmentFile=, a path inside a
// quoted Environment=), where only specifiers are special.
func pathValue(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// quote wraps s in double quotes with C-style escapes, which systemd undoes when it splits the
// line into words.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(s) + `"`
}
