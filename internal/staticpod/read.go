package staticpod

import (
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Command is what a static pod's container runs, as the kubelet would start it.
type Command struct {
	// Path is the manifest.
	Path string
	// Image is the container image; its entrypoint runs Args when Command is empty.
	Image string
	// Command and Args are the container's, each $(VAR) the kubelet expands from the container's
	// literal env values already expanded.
	Command, Args []string
}

// Argv is the command followed by its args.
func (c *Command) Argv() []string { return append(slices.Clone(c.Command), c.Args...) }

// ReadCommand reads the manifest at path and returns the command of its container named
// container (or of its only container). It is the one reader of kubestrap's manifests: reset and
// show-apiserver-options must see the command line the kubelet runs. A missing file is returned
// as an error satisfying errors.Is(err, fs.ErrNotExist).
func ReadCommand(path, container string) (*Command, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("static pod manifest %s: %w", path, err)
	}
	c, err := podContainer(&pod, container)
	if err != nil {
		return nil, fmt.Errorf("static pod manifest %s: %w", path, err)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expandKubeletVars(e.Value, env)
		}
	}
	out := &Command{Path: path, Image: c.Image}
	for _, w := range c.Command {
		out.Command = append(out.Command, expandKubeletVars(w, env))
	}
	for _, w := range c.Args {
		out.Args = append(out.Args, expandKubeletVars(w, env))
	}
	return out, nil
}

func podContainer(pod *corev1.Pod, name string) (*corev1.Container, error) {
	var names []string
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name == name {
			return c, nil
		}
		names = append(names, c.Name)
	}
	if len(pod.Spec.Containers) == 1 {
		return &pod.Spec.Containers[0], nil
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("the pod has no container")
	}
	return nil, fmt.Errorf("no container named %s (containers: %s)", name, strings.Join(names, ", "))
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
