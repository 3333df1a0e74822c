package inspect

import (
	"strings"

	"github.com/kubestrap/kubestrap/internal/staticpod"
)

// LoadManifest reads kube-apiserver's options from a static pod manifest through
// staticpod.ReadCommand (the reader reset uses too): the container named kube-apiserver (or the
// only container), its command followed by its args, with the $(VAR) references the kubelet
// would expand. A missing file is returned as an error satisfying errors.Is(err, fs.ErrNotExist).
func LoadManifest(path string, cat Catalog) (*Invocation, error) {
	c, err := staticpod.ReadCommand(path, Component)
	if err != nil {
		return nil, err
	}
	words := c.Argv()
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
