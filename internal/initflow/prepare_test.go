package initflow

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// preparingMode is local mode that records when init asks it to prepare its start.
type preparingMode struct {
	runmode.Local
	prepared *int
}

func (m preparingMode) Prepare(*runmode.Run) { *m.prepared++ }

// TestPreflightPreparesTheMode: a whole init asks the mode to prepare its start (local mode: the
// component program's install) once the pre-flight checks have passed and before the certs phase;
// not when they fail (bad input leaves nothing behind), not in a single phase's run, and not when
// the control-plane phase is skipped.
func TestPreflightPreparesTheMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		ignore    []string
		dirty     bool // a foreign etcd data dir: the pre-flight checks fail
		skip      []string
		wantCerts int // prepared before the certs phase ran
	}{
		{name: "checks pass", ignore: []string{"all"}, wantCerts: 1},
		{name: "checks fail", dirty: true, wantCerts: -1},
		{name: "control-plane skipped", ignore: []string{"all"}, skip: []string{"control-plane"}, wantCerts: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := paths.MustUnder(t.TempDir())
			if tc.dirty {
				dir := p.EtcdDataDir("")
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "foreign"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d, err := New(testConfig(t), p, config.ModeLocal, Options{IgnorePreflight: tc.ignore, Out: &bytes.Buffer{}, Log: &bytes.Buffer{}})
			if err != nil {
				t.Fatal(err)
			}
			prepared, atCerts := 0, -1
			d.mode = preparingMode{prepared: &prepared}
			r := &workflow.Runner[*Data]{Phases: []workflow.Phase[*Data]{
				{Name: "preflight", Run: runPreflight},
				{Name: "certs", Run: func(context.Context, *Data) error { atCerts = prepared; return nil }},
				{Name: "control-plane", Run: func(context.Context, *Data) error { return nil }},
			}}
			err = RunAll(context.Background(), r, d, tc.skip)
			if (err != nil) != tc.dirty {
				t.Fatalf("err = %v", err)
			}
			if atCerts != tc.wantCerts || (tc.dirty && prepared != 0) {
				t.Errorf("prepared %d times, %d before certs; want %d before certs", prepared, atCerts, tc.wantCerts)
			}

			// A single phase's run never prepares.
			prepared = 0
			if err := runPreflight(context.Background(), d); err != nil && !tc.dirty {
				t.Fatal(err)
			}
			if prepared != 0 {
				t.Error("init phase preflight prepared the mode's start")
			}
		})
	}
}

// TestJoinPreflightPreparesNothing: a control-plane join runs init's preflight inside its own
// whole run, and settles nothing of init's: it must not begin a preparation it would not wait for.
func TestJoinPreflightPreparesNothing(t *testing.T) {
	t.Parallel()
	cp, err := NewControlPlane(testConfig(t), paths.MustUnder(t.TempDir()), config.ModeLocal, Options{IgnorePreflight: []string{"all"}, Out: &bytes.Buffer{}, Log: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	prepared := 0
	cp.d.mode = preparingMode{prepared: &prepared}
	join := &workflow.Runner[*Data]{Phases: []workflow.Phase[*Data]{
		{Name: "control-plane-prepare", Run: func(ctx context.Context, _ *Data) error { return cp.Preflight(ctx) }},
	}}
	if err := join.Run(context.Background(), cp.d, nil); err != nil {
		t.Fatal(err)
	}
	if prepared != 0 {
		t.Errorf("a join's preflight prepared the mode's start %d times", prepared)
	}
}
