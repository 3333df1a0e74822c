package initflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// TestInitSavesConfigAfterPreflight: a whole init saves the effective configuration after
// preflight and before the first phase that builds anything from it; single phases and dry runs
// do not write it.
func TestInitSavesConfigAfterPreflight(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{} // phase -> saved file existed when it ran
	probe := func(name string) func(context.Context, *Data) error {
		return func(ctx context.Context, d *Data) error {
			_, err := os.Stat(d.p.SavedConfig())
			seen[name] = err == nil
			return nil
		}
	}
	runner := func() *workflow.Runner[*Data] {
		return withSavedConfig(&workflow.Runner[*Data]{Phases: []workflow.Phase[*Data]{
			{Name: "preflight", Run: probe("preflight")},
			{Name: "certs", Run: probe("certs"), Phases: []workflow.Phase[*Data]{{Name: "ca", Run: probe("certs/ca")}}},
		}})
	}

	p := paths.MustUnder(t.TempDir())
	cfg := testConfig(t)
	cfg.Cluster.ClusterName = "saved-by-init"
	cfg.Kubestrap.Mode = config.ModeAuto // resolved to local by the caller
	var log bytes.Buffer
	d, err := New(cfg, p, config.ModeLocal, Options{Out: &bytes.Buffer{}, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := RunAll(context.Background(), runner(), d, nil); err != nil {
		t.Fatal(err)
	}
	if seen["preflight"] || !seen["certs"] || !seen["certs/ca"] {
		t.Errorf("saved file present per phase: %v; want absent during preflight only", seen)
	}
	data, err := os.ReadFile(p.SavedConfig())
	if err != nil || !strings.Contains(string(data), "clusterName: saved-by-init") || !strings.Contains(string(data), "mode: local") {
		t.Fatalf("saved file: %v\n%s", err, data)
	}
	if strings.Count(log.String(), "Saved the effective configuration") != 1 {
		t.Errorf("log %q: want one save", log.String())
	}

	// A re-run with the same configuration leaves the file alone.
	log.Reset()
	d, _ = New(cfg, p, config.ModeLocal, Options{Out: &bytes.Buffer{}, Log: &log})
	if err := RunAll(context.Background(), runner(), d, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "Saved") {
		t.Errorf("unchanged configuration saved again: %q", log.String())
	}

	// A single phase never writes it; a dry run only says it would.
	for name, o := range map[string]Options{"phase": {}, "dry run": {DryRun: true}} {
		p := paths.MustUnder(t.TempDir())
		log.Reset()
		o.Out, o.Log = &bytes.Buffer{}, &log
		d, err := New(testConfig(t), p, config.ModeLocal, o)
		if err != nil {
			t.Fatal(err)
		}
		r := runner()
		if name == "phase" {
			cmd := &cobra.Command{Use: "init", SilenceErrors: true, SilenceUsage: true}
			cmd.AddCommand(r.PhaseCommands(func(*cobra.Command, []string) (*Data, error) { return d, nil }, nil))
			cmd.SetArgs([]string{"phase", "certs"})
			clear(seen)
			err = cmd.Execute()
			if got, want := fmt.Sprint(seen), "map[certs:false certs/ca:false]"; got != want {
				t.Errorf("phase certs: saved file present per phase %s, want %s", got, want)
			}
		} else {
			err = RunAll(context.Background(), r, d, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p.SavedConfig()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %s written", name, p.SavedConfig())
		}
		if name == "dry run" && !strings.Contains(log.String(), "[dryrun] Would write file "+p.SavedConfig()) {
			t.Errorf("dry run log %q", log.String())
		}
	}
}
