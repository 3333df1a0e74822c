package config

import "testing"

func TestRedactToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"abcdef.q7w8e9r0t1y2u3i4", "abcdef.<redacted>"},
		{"abcdef.short", "abcdef.<redacted>"},
		{"abcdefq7w8e9r0t1y2u3i4", "<redacted, 22 characters>"},
		{"q7w8e9r0t1y2u3i4.abcdef", "<redacted, 23 characters>"},
		{"", "<redacted, 0 characters>"},
	} {
		if got := RedactToken(tc.in); got != tc.want {
			t.Errorf("RedactToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
