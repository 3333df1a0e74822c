package config

import (
	"fmt"
	"strings"
)

// Error lists every problem found in one configuration. Reporting them all at once lets an operator
// fix a file in one edit instead of one failed run per mistake.
type Error struct {
	// Source names where the configuration came from (a file name); empty for a configuration
	// built from flags and defaults only.
	Source string
	// Problems are the individual problems, in document order. Validation problems are
	// *field.Error values whose Field is the path inside the document.
	Problems []error
}

func (e *Error) Error() string {
	src := "invalid configuration"
	if e.Source != "" {
		src = e.Source
	}
	if len(e.Problems) == 1 {
		return src + ": " + e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", src, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap exposes the problems to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return e.Problems }

// newError returns nil for no problems, so callers can return its result directly without
// creating a non-nil interface holding a nil *Error.
func newError(source string, problems []error) error {
	if len(problems) == 0 {
		return nil
	}
	return &Error{Source: source, Problems: problems}
}
