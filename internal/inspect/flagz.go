package inspect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// FlagzPath is where kube-apiserver serves its effective flags. It exists when the ComponentFlagz
// feature gate is on: beta and enabled by default since v1.36 (alpha from v1.32).
const FlagzPath = "/flagz"

// flagzAccept asks for the structured v1beta1 document (machine-readable, served from v1.36) and
// accepts the text form, which is all that older servers have.
const flagzAccept = "application/json;as=Flagz;v=v1beta1;g=config.k8s.io, text/plain;q=0.5"

// flagzDoc is the part of config.k8s.io/v1beta1 Flagz that matters here.
type flagzDoc struct {
	Kind  string            `json:"kind"`
	Flags map[string]string `json:"flags"`
}

// RESTConfigFromKubeconfig loads a kubeconfig file for LoadFlagz.
func RESTConfigFromKubeconfig(path string) (*rest.Config, error) {
	return kubeclient.RESTConfigFromFile(path)
}

// LoadFlagz reads the effective value of every flag from a live server's /flagz. The answer has
// no command-line order and includes the defaults, so a flag counts as explicit when its value
// differs from the catalog's default (every flag, without a catalog).
func LoadFlagz(ctx context.Context, cfg *rest.Config, cat Catalog) (*Invocation, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	// /flagz is not an API group: an unversioned client with a codec that knows only
	// metav1.Status (for error bodies) is all that is needed.
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	client, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	url := strings.TrimSuffix(cfg.Host, "/") + FlagzPath

	body, ctype, status, err := getFlagz(ctx, client, flagzAccept)
	if status == http.StatusNotAcceptable {
		// A server that cannot negotiate our media types at all: ask for the text form alone.
		body, ctype, status, err = getFlagz(ctx, client, "text/plain")
	}
	if err != nil {
		switch status {
		case http.StatusNotFound:
			return nil, fmt.Errorf("%s: not served (404): the apiserver needs the ComponentFlagz feature gate (beta and on by default since v1.36; --feature-gates=ComponentFlagz=true before)", url)
		case http.StatusUnauthorized, http.StatusForbidden:
			return nil, fmt.Errorf("%s: refused (%d): the kubeconfig's user needs GET on the non-resource URL /flagz (the system:monitoring group has it): %w", url, status, err)
		}
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	flags, err := parseFlagz(body, ctype)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	inv := &Invocation{Source: SourceFlagz, Binary: cfg.Host, Location: url}
	names := make([]string, 0, len(flags))
	for n := range flags {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := Flag{Name: n, Value: flags[n], Origin: "flagz", Explicit: true}
		if fi, ok := cat[n]; ok {
			f.Explicit = f.Value != fi.Default
		}
		inv.Flags = append(inv.Flags, f)
	}
	inv.markUnknown(cat)
	return inv, nil
}

func getFlagz(ctx context.Context, client *rest.RESTClient, accept string) ([]byte, string, int, error) {
	var status int
	var ctype string
	res := client.Get().AbsPath(FlagzPath).SetHeader("Accept", accept).Do(ctx)
	res.StatusCode(&status).ContentType(&ctype)
	body, err := res.Raw()
	// For error bodies it cannot decode (plain text), client-go leaves the status code unset
	// but reports it in the error.
	var st apierrors.APIStatus
	if err != nil && status == 0 && errors.As(err, &st) {
		status = int(st.Status().Code)
	}
	return body, ctype, status, err
}

// parseFlagz decodes a /flagz response by its content type.
func parseFlagz(body []byte, contentType string) (map[string]string, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	switch mt {
	case "application/json":
		var doc flagzDoc
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, fmt.Errorf("decoding Flagz: %w", err)
		}
		if doc.Kind != "" && doc.Kind != "Flagz" {
			return nil, fmt.Errorf("expected kind Flagz, got %s", doc.Kind)
		}
		return doc.Flags, nil
	case "text/plain":
		return ParseFlagzText(body)
	}
	return nil, fmt.Errorf("unexpected content type %q", contentType)
}

// flagzSeparators are the separators the text form may use between name and value; the server
// picks one at random per process (to discourage parsing it), so it is detected, not assumed.
// ": " comes before ":" so the longer one wins when both fit.
var flagzSeparators = []string{": ", ":", "=", " "}

// ParseFlagzText parses the text/plain /flagz body: a header ("<component> flagz" and a warning
// line), then one "name<sep>value" line per flag, where <sep> is one of ":", ": ", "=" or " ",
// the same on every line. Flag names never contain any of them, so the separator is the one that
// follows the name on every line.
func ParseFlagzText(body []byte) (map[string]string, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	header := true
	for sc.Scan() {
		line := sc.Text()
		if header {
			// The header ends with the "Warning: ..." line; a body without one starts with flags.
			switch {
			case strings.TrimSpace(line) == "", strings.HasSuffix(strings.TrimSpace(line), " flagz"):
				continue
			case strings.HasPrefix(line, "Warning:"):
				header = false
				continue
			}
			header = false
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sep := ""
	for _, cand := range flagzSeparators {
		ok := true
		for _, l := range lines {
			if i := nameEnd(l); i >= len(l) || !strings.HasPrefix(l[i:], cand) {
				ok = false
				break
			}
		}
		if ok {
			sep = cand
			break
		}
	}
	flags := make(map[string]string, len(lines))
	if len(lines) == 0 {
		return flags, nil
	}
	if sep == "" {
		return nil, fmt.Errorf("unrecognised /flagz text format (first line %q)", lines[0])
	}
	for _, l := range lines {
		i := nameEnd(l)
		flags[l[:i]] = l[i+len(sep):]
	}
	return flags, nil
}

// nameEnd returns the index just past the flag name at the start of line.
func nameEnd(line string) int {
	i := strings.IndexAny(line, ":= ")
	if i < 0 {
		return len(line)
	}
	return i
}
