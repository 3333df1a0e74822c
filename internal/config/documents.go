package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Component configuration documents kubeadm accepts next to its own. Init decodes them strictly
// into their versioned Go types to find unknown fields, and keeps what the file says as JSON
// (Config.KubeletConfiguration, Config.KubeProxyConfiguration).
const (
	KubeletConfigAPIVersion = "kubelet.config.k8s.io/v1beta1"
	KindKubeletConfig       = "KubeletConfiguration"
	KubeProxyConfigAPIVer   = "kubeproxy.config.k8s.io/v1alpha1"
	KindKubeProxyConfig     = "KubeProxyConfiguration"

	// KindUpgrade is kubeadm's UpgradeConfiguration. kubestrap has no upgrade command yet, so the
	// document is recognised (a kubeadm file may carry it) and ignored.
	KindUpgrade = "UpgradeConfiguration"
)

// Document is one YAML document of a configuration file.
type Document struct {
	// Index is the 1-based position among the file's non-empty documents, the number a reader
	// counts when looking at the file.
	Index int
	// Line is the line of the file where the document starts.
	Line       int
	APIVersion string
	Kind       string
	// Raw is the document's YAML text.
	Raw []byte
}

// String names the document in messages: `document 2 (ClusterConfiguration)`.
func (d Document) String() string {
	if d.Kind == "" {
		return fmt.Sprintf("document %d", d.Index)
	}
	return fmt.Sprintf("document %d (%s)", d.Index, d.Kind)
}

// Documents are the documents of one file.
type Documents []Document

// Find returns the document of the given kind, if there is one (ParseDocuments guarantees at most
// one per apiVersion and kind).
func (ds Documents) Find(apiVersion, kind string) (Document, bool) {
	for _, d := range ds {
		if d.APIVersion == apiVersion && d.Kind == kind {
			return d, true
		}
	}
	return Document{}, false
}

// Has reports whether a kubeadm or kubestrap document of the given kind is present.
func (ds Documents) Has(kind string) bool {
	for _, d := range ds {
		if d.Kind == kind && (d.APIVersion == KubeadmAPIVersion || d.APIVersion == KubestrapAPIVersion) {
			return true
		}
	}
	return false
}

// Kinds lists the kinds present, in file order.
func (ds Documents) Kinds() []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	return out
}

// splitDocuments splits YAML text on "---" separator lines, the way apimachinery's YAML reader
// does: a line that is "---" followed only by white space. Documents holding nothing but comments
// and blank lines are dropped so that a leading "---" does not shift the document numbers.
func splitDocuments(data []byte) []Document {
	var (
		docs  []Document
		cur   bytes.Buffer
		start = 1
		line  = 0
	)
	flush := func(next int) {
		if hasContent(cur.Bytes()) {
			raw := bytes.Clone(cur.Bytes())
			docs = append(docs, Document{Index: len(docs) + 1, Line: start, Raw: raw})
		}
		cur.Reset()
		start = next
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(text, "---") && strings.TrimSpace(text[3:]) == "" {
			flush(line + 1)
			continue
		}
		cur.WriteString(text)
		cur.WriteByte('\n')
	}
	flush(line + 1)
	return docs
}

// hasContent reports whether a document has anything but blank lines and comments.
func hasContent(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// ParseDocuments splits a configuration file into its documents and identifies each one by
// apiVersion and kind. It reports, as one *Error, documents that are not YAML objects, lack
// apiVersion or kind, use an unknown or unsupported apiVersion or kind, or repeat a kind; the
// documents it could identify are returned even then, so callers can go on and report the
// problems of those too. The documents' fields are not decoded here; LoadInit, LoadJoin and
// LoadReset do that strictly.
func ParseDocuments(data []byte) (Documents, error) {
	var (
		docs     Documents
		problems []error
	)
	seen := map[string]Document{}
	for _, d := range splitDocuments(data) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(d.Raw, &tm); err != nil {
			problems = append(problems, fmt.Errorf("%s at line %d: not a YAML object: %w", d, d.Line, err))
			continue
		}
		d.APIVersion, d.Kind = tm.APIVersion, tm.Kind
		if err := checkTypeMeta(tm); err != nil {
			problems = append(problems, fmt.Errorf("%s at line %d: %w", d, d.Line, err))
			continue
		}
		key := tm.APIVersion + "/" + tm.Kind
		if prev, dup := seen[key]; dup {
			problems = append(problems, fmt.Errorf("%s: kind %s is already given by %s: a file holds at most one document of each kind", d, tm.Kind, prev))
			continue
		}
		seen[key] = d
		docs = append(docs, d)
	}
	return docs, newError("", problems)
}

// problemsOf unpacks an *Error into its problems (any other error is one problem).
func problemsOf(err error) []error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Problems
	}
	return []error{err}
}

// checkTypeMeta accepts the apiVersion/kind pairs kubestrap reads and explains the rest.
func checkTypeMeta(tm metav1.TypeMeta) error {
	if tm.APIVersion == "" {
		return errors.New(`apiVersion is missing: every document needs "apiVersion" and "kind"`)
	}
	if tm.Kind == "" {
		return errors.New(`kind is missing: every document needs "apiVersion" and "kind"`)
	}
	group, version, _ := strings.Cut(tm.APIVersion, "/")
	switch group {
	case "kubeadm.k8s.io":
		switch version {
		case "v1beta4":
			switch tm.Kind {
			case KindInit, KindCluster, KindJoin, KindReset, KindUpgrade:
				return nil
			}
			return fmt.Errorf("unknown kind %q for apiVersion %s (known: %s, %s, %s, %s, %s)",
				tm.Kind, tm.APIVersion, KindInit, KindCluster, KindJoin, KindReset, KindUpgrade)
		case "v1beta3":
			return fmt.Errorf("apiVersion %s is no longer supported: convert the file to %s with \"kubeadm config migrate --old-config FILE\" from kubeadm v1.36 or older", tm.APIVersion, KubeadmAPIVersion)
		case "v1":
			return fmt.Errorf("apiVersion %s is experimental in kubeadm and not supported by kubestrap: use %s", tm.APIVersion, KubeadmAPIVersion)
		case "v1beta1", "v1beta2", "v1alpha1", "v1alpha2", "v1alpha3":
			return fmt.Errorf("apiVersion %s is no longer supported: convert the file to %s with \"kubeadm config migrate\" of older kubeadm releases, one version at a time", tm.APIVersion, KubeadmAPIVersion)
		}
		return fmt.Errorf("unknown apiVersion %q: kubestrap reads %s", tm.APIVersion, KubeadmAPIVersion)
	case "kubestrap.io":
		if tm.APIVersion != KubestrapAPIVersion {
			return fmt.Errorf("unknown apiVersion %q: kubestrap reads %s", tm.APIVersion, KubestrapAPIVersion)
		}
		if tm.Kind != KindKubestrap {
			return fmt.Errorf("unknown kind %q for apiVersion %s (known: %s)", tm.Kind, tm.APIVersion, KindKubestrap)
		}
		return nil
	case "kubelet.config.k8s.io":
		if tm.APIVersion != KubeletConfigAPIVersion || tm.Kind != KindKubeletConfig {
			return fmt.Errorf("unsupported component config %s %s: kubestrap accepts %s %s", tm.APIVersion, tm.Kind, KubeletConfigAPIVersion, KindKubeletConfig)
		}
		return nil
	case "kubeproxy.config.k8s.io":
		if tm.APIVersion != KubeProxyConfigAPIVer || tm.Kind != KindKubeProxyConfig {
			return fmt.Errorf("unsupported component config %s %s: kubestrap accepts %s %s", tm.APIVersion, tm.Kind, KubeProxyConfigAPIVer, KindKubeProxyConfig)
		}
		return nil
	}
	return fmt.Errorf("unknown apiVersion %q (kind %s): kubestrap reads %s and %s documents", tm.APIVersion, tm.Kind, KubeadmAPIVersion, KubestrapAPIVersion)
}

// decodeStrict decodes a document into v. It returns hard errors (the document could not be decoded
// at all: bad YAML, a value of the wrong type) separately from strict ones (unknown or duplicate
// fields): after strict errors the known fields are still decoded, so validation can go on and
// report its problems too.
func decodeStrict(d Document, v any) (strict []error, hard error) {
	// YAMLToJSONStrict rejects duplicate keys, which plain YAML decoding silently collapses.
	js, err := yaml.YAMLToJSONStrict(d.Raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	// sigs.k8s.io/json names unknown fields by their full path ("apiServer.foo"), which the
	// standard library's DisallowUnknownFields does not, and matches field names case-sensitively
	// as the Kubernetes API machinery (and so kubeadm) does.
	errs, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		if p := durationErrorPath(js, err); p != "" {
			return nil, fmt.Errorf("%s: %s: %w (write durations like 24h0m0s, 5m or 90s)", d, p, err)
		}
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	for _, e := range errs {
		strict = append(strict, fmt.Errorf("%s: %w", d, e))
	}
	return strict, nil
}

// durationRe finds the offending value in time.ParseDuration's messages (`time: invalid duration
// "5x"`, `time: unknown unit "x" in duration "5x"`).
var durationRe = regexp.MustCompile(`^time: .*duration "(.*)"$`)

// durationErrorPath names the field of a bad duration. metav1.Duration's own unmarshaller reports
// only the value, and "time: invalid duration" alone does not say which of a dozen durations is
// wrong; finding the string in the document does.
func durationErrorPath(js []byte, err error) string {
	m := durationRe.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	var tree any
	if json.Unmarshal(js, &tree) != nil {
		return ""
	}
	return findString(tree, m[1], "")
}

func findString(node any, want, path string) string {
	switch n := node.(type) {
	case string:
		if n == want {
			return path
		}
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if found := findString(n[k], want, p); found != "" {
				return found
			}
		}
	case []any:
		for i, e := range n {
			if found := findString(e, want, fmt.Sprintf("%s[%d]", path, i)); found != "" {
				return found
			}
		}
	}
	return ""
}
