package bootstrap

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"k8s.io/client-go/kubernetes/fake"
)

// badTokens are malformed tokens, each with the secret (or near-secret) it carries; none of
// those may appear in an error.
var badTokens = []struct{ token, secret string }{
	{"abcdef.q7w8e9r0t1y2u3i4x", "q7w8e9r0t1y2u3i4"}, // secret one character too long
	{"abcdef.q7w8e9r0t1y2u3i", "q7w8e9r0t1y2u3i"},    // one too short
	{"abcdefq7w8e9r0t1y2u3i4", "q7w8e9r0t1y2u3i4"},   // dot left out
	{"abcdef-q7w8e9r0t1y2u3i4", "q7w8e9r0t1y2u3i4"},  // wrong separator
	{"ABCDEF.Q7W8E9R0T1Y2U3I4", "Q7W8E9R0T1Y2U3I4"},  // upper case
	{"q7w8e9r0t1y2u3i4.abcdef", "q7w8e9r0t1y2u3i4"},  // halves swapped
	{" abcdef.q7w8e9r0t1y2u3i4", "q7w8e9r0t1y2u3i4"},
}

func TestMalformedTokenErrorsNeverShowTheSecret(t *testing.T) {
	t.Parallel()
	fakeC := fake.NewClientset()
	c := kubeclienttest.Wrap(fakeC)
	for _, bt := range badTokens {
		errs := map[string]error{}
		_, _, errs["ParseToken"] = ParseToken(bt.token)
		_, errs["NewToken"] = NewToken(bt.token, "", time.Hour, DefaultTokenUsages, DefaultTokenGroups, time.Now())
		_, errs["TokenID"] = TokenID(bt.token)
		errs["DeleteToken"] = DeleteToken(context.Background(), c, bt.token)
		for fn, err := range errs {
			if err == nil {
				t.Errorf("%s(%q) accepted a malformed token", fn, bt.token)
				continue
			}
			if strings.Contains(err.Error(), bt.secret) {
				t.Errorf("%s(%q): the error shows the secret: %v", fn, bt.token, err)
			}
			if !strings.Contains(err.Error(), "redacted") {
				t.Errorf("%s(%q): the error does not say the token was redacted: %v", fn, bt.token, err)
			}
		}
	}
}
