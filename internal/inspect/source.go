package inspect

import (
	"path/filepath"
	"strings"

	"github.com/kubestrap/kubestrap/internal/runmode"
)

// UnitName is kube-apiserver's systemd service.
const UnitName = Component + ".service"

// LoadSource reads kube-apiserver's options from the file a run mode runs it from
// (runmode.Mode.Source: the static pod manifest with the $(VAR) references the kubelet expands,
// the systemd unit with its drop-ins and environment), each flag keeping the place that set it.
// These are the readers reset uses too. A missing file is returned as an error satisfying
// errors.Is(err, fs.ErrNotExist).
func LoadSource(src runmode.Source, cat Catalog) (*Invocation, error) {
	cl, err := src.Read()
	if err != nil {
		return nil, err
	}
	words := make([]token, len(cl.Words))
	for i, w := range cl.Words {
		words[i] = token{text: w.Text, origin: w.Origin}
	}
	inv := &Invocation{Source: SourceKind(src.Name), label: src.Label, Location: cl.Path}
	start := 0
	if cl.ArgsOnly {
		// The image's entrypoint runs the words; they are all arguments.
		inv.Binary = cl.Image
	} else if len(words) > 0 {
		// The program, and the "kube-apiserver" subcommand of `kubestrap kube-apiserver ...`.
		start = 1
		if len(words) > 1 && words[1].text == Component && filepath.Base(words[0].text) != Component {
			start = 2
		}
		var bin []string
		for _, w := range words[:start] {
			bin = append(bin, w.text)
		}
		inv.Binary = strings.Join(bin, " ")
	}
	inv.Flags, inv.Extra = parseTokens(words[start:], cat)
	inv.markUnknown(cat)
	return inv, nil
}
