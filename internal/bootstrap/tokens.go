package bootstrap

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	bootstrapsecrets "k8s.io/cluster-bootstrap/util/secrets"
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

// ParseToken splits "<id>.<secret>" and checks kubeadm's format.
func ParseToken(s string) (id, secret string, err error) {
	if !bootstraputil.IsValidBootstrapToken(s) {
		return "", "", fmt.Errorf("token %q is malformed: it must match [a-z0-9]{6}.[a-z0-9]{16} (generate one with 'kubestrap token generate')", s)
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
	groups, err := bootstrapsecrets.GetGroups(s)
	if err != nil {
		return Token{}, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	t.Groups = groups
	return t, nil
}

// CreateOrUpdateToken stores t; an existing Secret of the same id is updated (kubeadm does the same
// when init is re-run with the same configured token).
func CreateOrUpdateToken(ctx context.Context, c kubernetes.Interface, t Token) error {
	s := t.ToSecret()
	api := c.CoreV1().Secrets(s.Namespace)
	_, err := api.Create(ctx, s, metav1.CreateOptions{})
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return wrap("create Secret", s.Namespace, s.Name, err)
	}
	_, err = api.Update(ctx, s, metav1.UpdateOptions{})
	return wrap("update Secret", s.Namespace, s.Name, err)
}

// ListTokens returns every bootstrap token in kube-system, sorted by id.
func ListTokens(ctx context.Context, c kubernetes.Interface) ([]Token, error) {
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

// DeleteToken deletes the token with id (or "<id>.<secret>").
func DeleteToken(ctx context.Context, c kubernetes.Interface, idOrToken string) error {
	id := idOrToken
	if i := strings.IndexByte(idOrToken, '.'); i >= 0 {
		id = idOrToken[:i]
	}
	if !bootstraputil.IsValidBootstrapTokenID(id) {
		return fmt.Errorf("%q is neither a token id ([a-z0-9]{6}) nor a token", idOrToken)
	}
	name := bootstraputil.BootstrapTokenSecretName(id)
	err := c.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("bootstrap token %q not found", id)
	}
	return wrap("delete Secret", metav1.NamespaceSystem, name, err)
}
