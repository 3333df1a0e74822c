package initflow

import (
	"bytes"
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// onlyPhases is init's runner cut down to the named top-level phases, so that a full run can be
// exercised without preflight's port checks or a control plane.
func onlyPhases(names ...string) *workflow.Runner[*Data] {
	r := NewRunner()
	r.Phases = slices.DeleteFunc(r.Phases, func(p workflow.Phase[*Data]) bool { return !slices.Contains(names, p.Name) })
	return r
}

// filesUnder lists the regular files under root, relative to it, sorted.
func filesUnder(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

type initRun struct {
	root     string
	out, log bytes.Buffer
	err      error
}

// runInit runs init under a fresh root: a whole run of the given top-level phases with skip when
// phaseArgs is nil, else "init phase <phaseArgs...>" through the generated commands.
func runInit(t *testing.T, cfg *config.Config, mode string, dryRun bool, top []string, skip []string, phaseArgs []string) *initRun {
	t.Helper()
	res := &initRun{root: t.TempDir()}
	p := paths.MustUnder(res.root)
	d, err := New(cfg, p, mode, Options{DryRun: dryRun, Out: &res.out, Log: &res.log})
	if err != nil {
		t.Fatal(err)
	}
	if phaseArgs == nil {
		r := onlyPhases(top...)
		r.Log = &res.log
		res.err = RunAll(context.Background(), r, d, skip)
		return res
	}
	r := NewRunner()
	r.Log = &res.log
	cmd := &cobra.Command{Use: "init", SilenceErrors: true, SilenceUsage: true}
	cmd.AddCommand(r.PhaseCommands(func(*cobra.Command, []string) (*Data, error) { return d, nil }, nil))
	cmd.SetArgs(append([]string{"phase"}, phaseArgs...))
	cmd.SetOut(&bytes.Buffer{})
	res.err = cmd.Execute()
	return res
}

// summary is what a run left: the files under its root, then its log and error, with the root
// shown as ROOT.
func (r *initRun) summary(t *testing.T) string {
	t.Helper()
	errText := "<nil>"
	if r.err != nil {
		errText = r.err.Error()
	}
	s := "--- files\n" + strings.Join(filesUnder(t, r.root), "\n") + "\n--- log\n" + r.log.String() +
		"--- out\n" + r.out.String() + "--- err\n" + errText + "\n"
	return strings.ReplaceAll(s, r.root, "ROOT")
}

func externalEtcd(t *testing.T) *config.Config {
	cfg := testConfig(t)
	cfg.Cluster.Etcd.Local = nil
	cfg.Cluster.Etcd.External = &config.ExternalEtcd{Endpoints: []string{"https://10.0.0.1:2379"}, CAFile: "/x/ca.crt", CertFile: "/x/c.crt", KeyFile: "/x/c.key"}
	return cfg
}

func skipCAInConfig(t *testing.T) *config.Config {
	cfg := testConfig(t)
	cfg.Init.SkipPhases = []string{"certs/ca"}
	return cfg
}

var pkiCases = []struct {
	name  string
	cfg   func(*testing.T) *config.Config
	skip  []string
	phase []string
}{
	{name: "init"},
	{name: "init --skip-phases certs", skip: []string{"certs"}},
	{name: "init --skip-phases certs/ca", skip: []string{"certs/ca"}},
	{name: "init --skip-phases certs/sa,certs/etcd-ca", skip: []string{"certs/sa", "certs/etcd-ca"}},
	{name: "init --skip-phases kubeconfig", skip: []string{"kubeconfig"}},
	{name: "init --skip-phases kubeconfig/admin,kubeconfig/kubelet", skip: []string{"kubeconfig/admin", "kubeconfig/kubelet"}},
	{name: "init, skipPhases certs/ca in the config", cfg: skipCAInConfig},
	{name: "init, external etcd", cfg: externalEtcd},
	{name: "init phase certs", phase: []string{"certs"}},
	{name: "init phase certs all", phase: []string{"certs", "all"}},
	{name: "init phase certs ca", phase: []string{"certs", "ca"}},
	{name: "init phase certs sa", phase: []string{"certs", "sa"}},
	{name: "init phase certs apiserver", phase: []string{"certs", "apiserver"}},
	{name: "init phase certs, skipPhases certs/ca in the config", cfg: skipCAInConfig, phase: []string{"certs"}},
	{name: "init phase certs etcd-ca, external etcd", cfg: externalEtcd, phase: []string{"certs", "etcd-ca"}},
	{name: "init phase certs, external etcd", cfg: externalEtcd, phase: []string{"certs"}},
	{name: "init phase kubeconfig", phase: []string{"kubeconfig"}},
	{name: "init phase kubeconfig admin", phase: []string{"kubeconfig", "admin"}},
}

// TestCertsAndKubeconfigPhases pins, with a temp root and no cluster, what a whole init and the
// "init phase" commands do for the certs and kubeconfig groups: which files they write, what they
// log (one EnsureCerts/EnsureKubeconfigs call per group run, so one "Using kubeconfig folder"
// line), how --skip-phases and the configuration's skipPhases select members, that a single
// "init phase" ignores the configuration's skipPhases, that etcd certificates are silently not
// made with external etcd, and that only whole runs save the configuration.
func TestCertsAndKubeconfigPhases(t *testing.T) {
	t.Parallel()
	var all strings.Builder
	for _, tc := range pkiCases {
		cfg := testConfig(t)
		if tc.cfg != nil {
			cfg = tc.cfg(t)
		}
		r := runInit(t, cfg, config.ModeLocal, false, []string{"certs", "kubeconfig"}, tc.skip, tc.phase)
		all.WriteString("=== " + tc.name + "\n" + r.summary(t))
	}
	golden.Check(t, "testdata/phases/certs-kubeconfig.txt", []byte(all.String()))
}

// TestPhasesThatNeedTheControlPlane pins what a whole init does with the phases that talk to the
// new control plane when static-pod mode wrote files that nothing here starts (a root dir): they
// are skipped with one note, whichever of them is first; a dry run runs them (as dry runs); and
// a single "init phase" always runs its phase.
func TestPhasesThatNeedTheControlPlane(t *testing.T) {
	t.Parallel()
	top := []string{"wait-control-plane", "upload-config", "bootstrap-token", "show-join-command"}
	var all strings.Builder
	for _, tc := range []struct {
		name   string
		dryRun bool
		skip   []string
		phase  []string
	}{
		{name: "init"},
		{name: "init --skip-phases wait-control-plane", skip: []string{"wait-control-plane"}},
		{name: "init --skip-phases wait-control-plane,upload-config/kubeadm", skip: []string{"wait-control-plane", "upload-config/kubeadm"}},
		{name: "init --skip-phases all of them", skip: top},
		{name: "init --dry-run", dryRun: true},
		{name: "init phase show-join-command", phase: []string{"show-join-command"}},
		{name: "init phase show-join-command --dry-run", dryRun: true, phase: []string{"show-join-command"}},
		{name: "init phase upload-config kubelet --dry-run", dryRun: true, phase: []string{"upload-config", "kubelet"}},
	} {
		cfg := testConfig(t)
		cfg.Init.BootstrapTokens = []config.BootstrapToken{{Token: "abcdef.0123456789abcdef"}}
		r := runInit(t, cfg, config.ModeStaticPod, tc.dryRun, top, tc.skip, tc.phase)
		all.WriteString("=== " + tc.name + "\n" + r.summary(t))
	}
	golden.Check(t, "testdata/phases/needs-control-plane.txt", []byte(all.String()))
}
