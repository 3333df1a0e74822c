package inspect

import (
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// LoadManifest reads kube-apiserver's options from a static pod manifest: the container named
// kube-apiserver (or the only container), its command followed by its args, with the $(VAR)
// references the kubelet would expand from the container's literal env values. A missing file
// is returned as an error satisfying errors.Is(err, fs.ErrNotExist).
func LoadManifest(path string, cat Catalog) (*Invocation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("static pod manifest %s: %w", path, err)
	}
	c, err := apiserverContainer(&pod)
	if err != nil {
		return nil, fmt.Errorf("static pod manifest %s: %w", path, err)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expandKubeletVars(e.Value, env)
		}
	}
	words := make([]string, 0, len(c.Command)+len(c.Args))
	for _, w := range append(append([]string(nil), c.Command...), c.Args...) {
		words = append(words, expandKubeletVars(w, env))
	}
	inv := &Invocation{Source: SourceManifest, Location: path}
	// Without a command the image's entrypoint runs; the args are then all flags.
	start := 0
	if len(c.Command) > 0 {
		start = 1
		if len(words) > 1 && words[1] == Component && !strings.HasSuffix(words[0], Component) {
			start = 2
		}
		inv.Binary = strings.Join(words[:start], " ")
	} else {
		inv.Binary = c.Image
	}
	inv.Flags, inv.Extra = ParseArgs(words[start:], cat, inv.Label())
	inv.markUnknown(cat)
	return inv, nil
}

func apiserverContainer(pod *corev1.Pod) (*corev1.Container, error) {
	var names []string
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name == Component {
			return c, nil
		}
		names = append(names, c.Name)
	}
	if len(pod.Spec.Containers) == 1 {
		return &pod.Spec.Containers[0], nil
	}
	return nil, fmt.Errorf("no container named %s (containers: %s)", Component, strings.Join(names, ", "))
}

// expandKubeletVars expands $(VAR) the way the kubelet does for command and args: a defined
// variable is replaced, an undefined reference is kept verbatim, and $$ escapes a dollar.
func expandKubeletVars(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
