package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	bootstrapsecrets "k8s.io/cluster-bootstrap/util/secrets"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// Token is a bootstrap token as stored in a bootstrap.kubernetes.io/token Secret.
type Token struct {
	ID          string    `json:"id"`
	Secret      string    `json:"-"`
	Description string    `json:"description,omitempty"`
	Expires     time.Time `json:"expires,omitempty"`
	Usages      []string  `json:"usages"`
	Groups      []string  `json:"groups"`
}

// String is the token as users pass it: "<id>.<secret>".
func (t Token) String() string { return bootstraputil.TokenFromIDAndSecret(t.ID, t.Secret) }

// ParseToken splits "<id>.<secret>" and checks kubeadm's format. The error never contains the
// secret (see config.RedactToken).
func ParseToken(s string) (id, secret string, err error) {
	if !bootstraputil.IsValidBootstrapToken(s) {
		return "", "", fmt.Errorf("token %s is malformed: it must match [a-z0-9]{6}.[a-z0-9]{16} (generate one with 'kubestrap token generate')", config.RedactToken(s))
	}
	parts := strings.SplitN(s, ".", 2)
	return parts[0], parts[1], nil
}

// Secret renders t as the Secret kube-system/bootstrap-token-<id>, with the same keys and meaning as
// kubeadm's, so tokens made by either tool work with both.
func (t Token) ToSecret() *corev1.Secret {
	data := map[string][]byte{
		bootstrapapi.BootstrapTokenIDKey:     []byte(t.ID),
		bootstrapapi.BootstrapTokenSecretKey: []byte(t.Secret),
	}
	if t.Description != "" {
		data[bootstrapapi.BootstrapTokenDescriptionKey] = []byte(t.Description)
	}
	if !t.Expires.IsZero() {
		data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(t.Expires.UTC().Format(time.RFC3339))
	}
	for _, u := range t.Usages {
		data[bootstrapapi.BootstrapTokenUsagePrefix+u] = []byte("true")
	}
	if len(t.Groups) > 0 {
		data[bootstrapapi.BootstrapTokenExtraGroupsKey] = []byte(strings.Join(t.Groups, ","))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(t.ID), Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		Data:       data,
	}
}

// TokenFromSecret reads a bootstrap token Secret back.
func TokenFromSecret(s *corev1.Secret) (Token, error) {
	id := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenIDKey)
	secret := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenSecretKey)
	if !bootstraputil.IsValidBootstrapToken(bootstraputil.TokenFromIDAndSecret(id, secret)) {
		return Token{}, fmt.Errorf("secret %s/%s does not hold a valid bootstrap token", s.Namespace, s.Name)
	}
	t := Token{ID: id, Secret: secret, Description: bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenDescriptionKey)}
	if exp := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenExpirationKey); exp != "" {
		e, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return Token{}, fmt.Errorf("secret %s/%s: expiration %q: %w", s.Namespace, s.Name, exp, err)
		}
		t.Expires = e
	}
	for k, v := range s.Data {
		if strings.HasPrefix(k, bootstrapapi.BootstrapTokenUsagePrefix) && string(v) == "true" {
			t.Usages = append(t.Usages, strings.TrimPrefix(k, bootstrapapi.BootstrapTokenUsagePrefix))
		}
	}
	sort.Strings(t.Usages)
	// Only auth-extra-groups: cluster-bootstrap's GetGroups would add system:bootstrappers, which
	// every token gets implicitly and kubeadm does not list as an extra group.
	if extra := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenExtraGroupsKey); extra != "" {
		for _, g := range strings.Split(extra, ",") {
			g = strings.TrimSpace(g)
			if err := bootstraputil.ValidateBootstrapGroupName(g); err != nil {
				return Token{}, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
			}
			t.Groups = append(t.Groups, g)
		}
	}
	return t, nil
}

// Defaults of `token create`, kubeadm's.
const (
	DefaultTokenTTL = 24 * time.Hour
)

// DefaultTokenUsages are the usages of a token created without --usages: "signing" lets it sign
// cluster-info for discovery, "authentication" lets it authenticate the TLS bootstrap.
var DefaultTokenUsages = []string{"signing", "authentication"}

// DefaultTokenGroups are the extra groups of a token created without --groups: the group that
// init's RBAC lets post CSRs and get them auto-approved.
var DefaultTokenGroups = []string{NodeBootstrapTokenAuthGroup}

// GenerateToken returns a new random token in kubeadm's format, from crypto/rand.
func GenerateToken() (string, error) {
	s, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", fmt.Errorf("generating a bootstrap token: %w", err)
	}
	return s, nil
}

// NewToken builds the token `token create` stores: token is "<id>.<secret>" (generated when
// empty), ttl 0 means it never expires. It applies kubeadm's validation: known usages, group names
// of the form system:bootstrappers:*, and groups only for a token that authenticates.
func NewToken(token, description string, ttl time.Duration, usages, groups []string, now time.Time) (Token, error) {
	if token == "" {
		var err error
		if token, err = GenerateToken(); err != nil {
			return Token{}, err
		}
	}
	id, secret, err := ParseToken(token)
	if err != nil {
		return Token{}, err
	}
	if ttl < 0 {
		return Token{}, fmt.Errorf("--ttl %s is negative: pass a positive duration, or 0 for a token that never expires", ttl)
	}
	if err := bootstraputil.ValidateUsages(usages); err != nil {
		return Token{}, fmt.Errorf("--usages: %w", err)
	}
	if len(groups) > 0 && !slices.Contains(usages, "authentication") {
		return Token{}, fmt.Errorf("--groups %s: token groups cannot be specified unless --usages includes \"authentication\"", strings.Join(groups, ","))
	}
	for _, g := range groups {
		if err := bootstraputil.ValidateBootstrapGroupName(g); err != nil {
			return Token{}, fmt.Errorf("--groups: %w", err)
		}
	}
	t := Token{ID: id, Secret: secret, Description: description, Usages: slices.Clone(usages), Groups: slices.Clone(groups)}
	if ttl > 0 {
		// Whole seconds: the Secret stores RFC 3339 without fractions.
		t.Expires = now.Add(ttl).Truncate(time.Second)
	}
	return t, nil
}

// CreateToken stores t as a new Secret and fails when a token with its id exists, as kubeadm's
// `token create` does: silently replacing someone's token would change what it grants.
func CreateToken(ctx context.Context, c kubeclient.Interface, t Token) error {
	s := t.ToSecret()
	_, err := c.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("a token with id %q already exists: pick another token or delete that one first ('kubestrap token delete %s')", t.ID, t.ID)
	}
	return wrap("create Secret", s.Namespace, s.Name, err)
}

// CreateOrUpdateToken stores t; an existing Secret of the same id gets t's values (kubeadm does the
// same when init is re-run with the same configured token). It is a server-side apply, so labels
// or annotations others put on the Secret stay.
func CreateOrUpdateToken(ctx context.Context, c kubeclient.Interface, t Token) error {
	s := t.ToSecret()
	return kubeclient.Apply(ctx, c.CoreV1().Secrets(s.Namespace), s)
}

// ListTokens returns every bootstrap token in kube-system, sorted by id.
func ListTokens(ctx context.Context, c kubeclient.Interface) ([]Token, error) {
	list, err := c.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
		FieldSelector: "type=" + string(bootstrapapi.SecretTypeBootstrapToken),
	})
	if err != nil {
		return nil, fmt.Errorf("list bootstrap token Secrets: %w", err)
	}
	var out []Token
	for i := range list.Items {
		t, err := TokenFromSecret(&list.Items[i])
		if err != nil {
			continue // not ours to judge; kubeadm skips malformed ones too
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// TokenID returns the id of an id ("abcdef") or a whole token ("abcdef.0123456789abcdef").
func TokenID(idOrToken string) (string, error) {
	if bootstraputil.IsValidBootstrapTokenID(idOrToken) {
		return idOrToken, nil
	}
	// Only a well-formed token counts: "abcdef.typo" must not delete token abcdef.
	if !bootstraputil.IsValidBootstrapToken(idOrToken) {
		return "", fmt.Errorf("%s is neither a token id ([a-z0-9]{6}) nor a token ([a-z0-9]{6}.[a-z0-9]{16})", config.RedactToken(idOrToken))
	}
	id, _, _ := strings.Cut(idOrToken, ".")
	return id, nil
}

// DeleteToken deletes the token with id (or "<id>.<secret>").
func DeleteToken(ctx context.Context, c kubeclient.Interface, idOrToken string) error {
	id, err := TokenID(idOrToken)
	if err != nil {
		return err
	}
	name := bootstraputil.BootstrapTokenSecretName(id)
	err = c.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("bootstrap token %q not found", id)
	}
	return wrap("delete Secret", metav1.NamespaceSystem, name, err)
}

// TokenOutputAPIVersion is the group/version of kubeadm's output objects, which `token list -o
// json|yaml` prints so scripts written for kubeadm keep working.
const TokenOutputAPIVersion = "output.kubeadm.k8s.io/v1alpha3"

// OutputToken is kubeadm's output.kubeadm.k8s.io/v1alpha3 BootstrapToken.
type OutputToken struct {
	metav1.TypeMeta `json:",inline"`

	Token       string           `json:"token"`
	Description string           `json:"description,omitempty"`
	TTL         *metav1.Duration `json:"ttl,omitempty"`
	Expires     *metav1.Time     `json:"expires,omitempty"`
	Usages      []string         `json:"usages,omitempty"`
	Groups      []string         `json:"groups,omitempty"`
}

// Output converts t to kubeadm's output object. Like kubeadm it carries the secret: listing
// tokens is how an administrator recovers one.
func (t Token) Output() OutputToken {
	o := OutputToken{
		TypeMeta:    metav1.TypeMeta{APIVersion: TokenOutputAPIVersion, Kind: "BootstrapToken"},
		Token:       t.String(),
		Description: t.Description,
		Usages:      t.Usages,
		Groups:      t.Groups,
	}
	if !t.Expires.IsZero() {
		o.Expires = &metav1.Time{Time: t.Expires}
	}
	return o
}

// Token list output formats.
const (
	OutputTable = "table"
	OutputText  = "text" // kubeadm's name for the table
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// WriteTokens prints tokens in format: the table kubeadm prints (columns TOKEN TTL EXPIRES USAGES
// DESCRIPTION EXTRA GROUPS, TTL relative to now), or one JSON or YAML document per token, as
// kubeadm's printers emit them.
func WriteTokens(w io.Writer, tokens []Token, format string, now time.Time) error {
	switch format {
	case "", OutputTable, OutputText:
		return writeTokenTable(w, tokens, now)
	case OutputJSON:
		for _, t := range tokens {
			b, err := json.MarshalIndent(t.Output(), "", "    ")
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
				return err
			}
		}
		return nil
	case OutputYAML:
		for i, t := range tokens {
			b, err := yaml.Marshal(t.Output())
			if err != nil {
				return err
			}
			if i > 0 {
				if _, err := io.WriteString(w, "---\n"); err != nil {
					return err
				}
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("unknown output format %q: use table, json or yaml", format)
	}
}

func writeTokenTable(w io.Writer, tokens []Token, now time.Time) error {
	if len(tokens) == 0 {
		// kubeadm prints nothing at all, not even the header, when there are no tokens.
		return nil
	}
	tw := tabwriter.NewWriter(w, 10, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS")
	for _, t := range tokens {
		ttl, expires := "<forever>", "<never>"
		if !t.Expires.IsZero() {
			ttl = duration.ShortHumanDuration(t.Expires.Sub(now))
			expires = t.Expires.Format(time.RFC3339)
		}
		// The fixed widths are kubeadm's, so the columns line up as in its output.
		fmt.Fprintf(tw, "%s\t%-9s\t%s\t%-22s\t%-56s\t%s\n", t.String(), ttl, expires,
			orNone(strings.Join(t.Usages, ",")), orNone(t.Description), orNone(strings.Join(t.Groups, ",")))
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
