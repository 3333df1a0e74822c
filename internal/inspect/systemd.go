package inspect

import (
	"path/filepath"
	"strings"

	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// UnitName is kube-apiserver's systemd service.
const UnitName = Component + ".service"

// LoadUnit reads kube-apiserver's options from <root>/etc/systemd/system/kube-apiserver.service
// and its drop-ins, through systemd.ReadExecStart (the reader reset uses too), so each flag keeps
// the drop-in or environment file that set it. A missing unit is returned as an error satisfying
// errors.Is(err, fs.ErrNotExist).
func LoadUnit(p paths.Paths, cat Catalog) (*Invocation, error) {
	exec, err := systemd.ReadExecStart(p, UnitName)
	if err != nil {
		return nil, err
	}
	words := make([]token, len(exec.Words))
	for i, w := range exec.Words {
		words[i] = token{text: w.Text, origin: w.Origin}
	}
	inv := &Invocation{Source: SourceSystemd, Location: exec.Path}
	start := 1
	if len(words) > 1 && words[1].text == Component && filepath.Base(words[0].text) != Component {
		start = 2
	}
	var bin []string
	for _, w := range words[:start] {
		bin = append(bin, w.text)
	}
	inv.Binary = strings.Join(bin, " ")
	inv.Flags, inv.Extra = parseTokens(words[start:], cat)
	inv.markUnknown(cat)
	return inv, nil
}
