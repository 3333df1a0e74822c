package bootstrap

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

var now = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func TestGenerateToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		s, err := GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		if !bootstraputil.IsValidBootstrapToken(s) || seen[s] {
			t.Fatalf("GenerateToken = %q (valid %v, repeated %v)", s, bootstraputil.IsValidBootstrapToken(s), seen[s])
		}
		seen[s] = true
	}
}

func TestNewToken(t *testing.T) {
	t.Parallel()
	auth := []string{"signing", "authentication"}
	for _, tc := range []struct {
		name                  string
		token, desc           string
		ttl                   time.Duration
		usages, groups        []string
		want                  string // error substring, "" for success
		wantExpires           time.Time
		wantGeneratedTokenLen int
	}{
		{name: "defaults", token: "abcdef.0123456789abcdef", ttl: DefaultTokenTTL, usages: DefaultTokenUsages, groups: DefaultTokenGroups, wantExpires: now.Add(24 * time.Hour)},
		{name: "generated", ttl: time.Hour, usages: auth, wantExpires: now.Add(time.Hour), wantGeneratedTokenLen: 23},
		{name: "forever", token: "abcdef.0123456789abcdef", ttl: 0, usages: auth},
		{name: "malformed", token: "abcdef.0123", usages: auth, want: "malformed"},
		{name: "negative ttl", token: "abcdef.0123456789abcdef", ttl: -time.Second, usages: auth, want: "negative"},
		{name: "unknown usage", token: "abcdef.0123456789abcdef", usages: []string{"signing", "flying"}, want: "--usages"},
		{name: "groups without authentication", token: "abcdef.0123456789abcdef", usages: []string{"signing"}, groups: DefaultTokenGroups, want: `unless --usages includes "authentication"`},
		{name: "bad group", token: "abcdef.0123456789abcdef", usages: auth, groups: []string{"system:masters"}, want: "--groups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := NewToken(tc.token, tc.desc, tc.ttl, tc.usages, tc.groups, now)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expires.Equal(tc.wantExpires) {
				t.Errorf("expires = %v, want %v", tok.Expires, tc.wantExpires)
			}
			if tc.wantGeneratedTokenLen > 0 && len(tok.String()) != tc.wantGeneratedTokenLen {
				t.Errorf("generated token %q", tok.String())
			}
		})
	}
}

func TestTokenSecretRoundTrip(t *testing.T) {
	t.Parallel()
	tok := Token{ID: "abcdef", Secret: "0123456789abcdef", Description: "for worker-1", Expires: now.Add(time.Hour),
		Usages: []string{"authentication", "signing"}, Groups: DefaultTokenGroups}
	s := tok.ToSecret()
	// kubeadm's Secret layout (reference §5), so that kubeadm and kubestrap tokens interchange.
	if s.Name != "bootstrap-token-abcdef" || s.Namespace != "kube-system" || s.Type != "bootstrap.kubernetes.io/token" {
		t.Errorf("secret %s/%s type %s", s.Namespace, s.Name, s.Type)
	}
	for k, v := range map[string]string{
		"token-id": "abcdef", "token-secret": "0123456789abcdef", "description": "for worker-1",
		"expiration": "2026-05-01T11:00:00Z", "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
		"auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
	} {
		if got := string(s.Data[k]); got != v {
			t.Errorf("data[%s] = %q, want %q", k, got, v)
		}
	}
	back, err := TokenFromSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != tok.String() || !back.Expires.Equal(tok.Expires) || strings.Join(back.Usages, ",") != "authentication,signing" ||
		strings.Join(back.Groups, ",") != strings.Join(tok.Groups, ",") || back.Description != tok.Description {
		t.Errorf("round trip = %+v, want %+v", back, tok)
	}
}

func testTokens() []Token {
	return []Token{
		{ID: "abcdef", Secret: "0123456789abcdef", Expires: now.Add(23*time.Hour + 59*time.Minute),
			Usages: []string{"authentication", "signing"}, Groups: DefaultTokenGroups, Description: "worker tokens"},
		{ID: "zyxwvu", Secret: "fedcba9876543210", Usages: []string{"signing"}},
	}
}

func TestWriteTokensTable(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := WriteTokens(&b, testTokens(), "table", now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"TOKEN                     TTL         EXPIRES                USAGES                   DESCRIPTION                                                EXTRA GROUPS\n" +
		"abcdef.0123456789abcdef   23h         2026-05-02T09:59:00Z   authentication,signing   worker tokens                                              system:bootstrappers:kubeadm:default-node-token\n" +
		"zyxwvu.fedcba9876543210   <forever>   <never>                signing                  <none>                                                     <none>\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	expired := []Token{{ID: "abcdef", Secret: "0123456789abcdef", Expires: now.Add(-time.Minute)}}
	WriteTokens(&b, expired, "text", now)
	if !strings.Contains(b.String(), "<invalid>") {
		t.Errorf("an expired token's TTL is not <invalid>:\n%s", b.String())
	}

	b.Reset()
	WriteTokens(&b, nil, "table", now)
	if b.String() != "" {
		t.Errorf("no tokens printed %q, kubeadm prints nothing", b.String())
	}
}

func TestWriteTokensJSONYAML(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := WriteTokens(&b, testTokens()[:1], "json", now); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{
    "kind": "BootstrapToken",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "token": "abcdef.0123456789abcdef",
    "description": "worker tokens",
    "expires": "2026-05-02T09:59:00Z",
    "usages": [
        "authentication",
        "signing"
    ],
    "groups": [
        "system:bootstrappers:kubeadm:default-node-token"
    ]
}
`
	if b.String() != wantJSON {
		t.Errorf("json:\n%s\nwant:\n%s", b.String(), wantJSON)
	}

	b.Reset()
	if err := WriteTokens(&b, testTokens(), "yaml", now); err != nil {
		t.Fatal(err)
	}
	wantYAML := `apiVersion: output.kubeadm.k8s.io/v1alpha3
description: worker tokens
expires: "2026-05-02T09:59:00Z"
groups:
- system:bootstrappers:kubeadm:default-node-token
kind: BootstrapToken
token: abcdef.0123456789abcdef
usages:
- authentication
- signing
---
apiVersion: output.kubeadm.k8s.io/v1alpha3
kind: BootstrapToken
token: zyxwvu.fedcba9876543210
usages:
- signing
`
	if b.String() != wantYAML {
		t.Errorf("yaml:\n%s\nwant:\n%s", b.String(), wantYAML)
	}
	if err := WriteTokens(&b, nil, "wide", now); err == nil || !strings.Contains(err.Error(), "unknown output format") {
		t.Errorf("err = %v", err)
	}
}

func TestTokenAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fakeC := fake.NewClientset()
	c := kubeclienttest.Wrap(fakeC)
	tok := testTokens()[0]
	if err := CreateToken(ctx, c, tok); err != nil {
		t.Fatal(err)
	}
	if err := CreateToken(ctx, c, tok); err == nil || !strings.Contains(err.Error(), `a token with id "abcdef" already exists`) {
		t.Errorf("second create: %v", err)
	}
	if err := CreateOrUpdateToken(ctx, c, testTokens()[1]); err != nil {
		t.Fatal(err)
	}
	got, err := ListTokens(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "abcdef" || got[1].ID != "zyxwvu" {
		t.Fatalf("ListTokens = %+v", got)
	}
	if err := DeleteToken(ctx, c, "abcdef.typo"); err == nil || strings.Contains(err.Error(), "typo") {
		t.Errorf("delete of a malformed token: %v", err)
	}
	if err := DeleteToken(ctx, c, "abcdef.0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if err := DeleteToken(ctx, c, "zyxwvu"); err != nil {
		t.Fatal(err)
	}
	if err := DeleteToken(ctx, c, "zyxwvu"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("deleting twice: %v", err)
	}
	list, _ := c.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	if len(list.Items) != 0 {
		t.Errorf("%d secrets left", len(list.Items))
	}
}

func TestSignClusterInfo(t *testing.T) {
	t.Parallel()
	const content = "apiVersion: v1\nkind: Config\n"
	fakeC := fake.NewSimpleClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.ConfigMapClusterInfo, Namespace: metav1.NamespacePublic},
		Data:       map[string]string{bootstrapapi.KubeConfigKey: content},
	})
	c := kubeclienttest.Wrap(fakeC)
	signing := Token{ID: "abcdef", Secret: "0123456789abcdef", Usages: []string{"authentication", "signing"}}
	authOnly := Token{ID: "ghijkl", Secret: "0123456789abcdef", Usages: []string{"authentication"}}
	if err := SignClusterInfo(context.Background(), c, signing, authOnly); err != nil {
		t.Fatal(err)
	}
	cm, err := c.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(context.Background(), bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sig := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+"abcdef"]
	if !jws.DetachedTokenIsValid(sig, content, "abcdef", "0123456789abcdef") {
		t.Errorf("signature %q does not verify for the signing token", sig)
	}
	if _, ok := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+"ghijkl"]; ok {
		t.Errorf("a token without the signing usage got a signature")
	}
	if err := SignClusterInfo(context.Background(), kubeclienttest.Wrap(fake.NewSimpleClientset()), signing); err == nil {
		t.Errorf("no error without a cluster-info ConfigMap")
	}
}
