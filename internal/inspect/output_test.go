package inspect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// goldenInvocation is a process with every kind of flag the renderers must handle: repeated,
// bare, "--name value" form, a value with spaces, and one the catalog does not know.
func goldenInvocation() *Invocation {
	argv := append([]string{"/var/lib/kubestrap/bin/kube-apiserver"}, fixtureArgs...)
	argv = append(argv, "--v=2", "--profiling", "--v", "4", "--audit-policy-note=keep it short", "--max-requests-inflight", "800")
	return Process{PID: 4242, Comm: "kube-apiserver", Argv: argv}.Invocation(fakeCatalog)
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file, format string
		all          bool
	}{
		{"table.golden", OutputTable, false},
		{"table-all.golden", OutputTable, true},
		{"yaml.golden", OutputYAML, false},
		{"json.golden", OutputJSON, false},
		{"json-all.golden", OutputJSON, true},
		{"args.golden", OutputArgs, false},
	} {
		inv := goldenInvocation()
		if tt.all {
			AddDefaults(inv, fakeCatalog)
		}
		var out bytes.Buffer
		if err := Render(&out, inv, tt.format, tt.all); err != nil {
			t.Fatal(err)
		}
		checkGolden(t, tt.file, out.Bytes())
	}
}

// TestRenderArgsReproducesCmdline is the acceptance check: -o args equals /proc/PID/cmdline's
// words after argv[0] when the process used the --name=value form throughout.
func TestRenderArgsReproducesCmdline(t *testing.T) {
	t.Parallel()
	argv := append([]string{"/r/var/lib/kubestrap/bin/kube-apiserver"}, fixtureArgs...)
	argv = append(argv, "--feature-gates=A=true,B=false", "--v=2", "--v=3", "--enable-bootstrap-token-auth", "--x=a b")
	var out bytes.Buffer
	if err := Render(&out, Process{PID: 1, Argv: argv}.Invocation(fakeCatalog), OutputArgs, false); err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(argv[1:], "\n") + "\n"; out.String() != want {
		t.Errorf("args\n%s\nwant\n%s", out.String(), want)
	}
}

// TestReportSchema pins the field names of the documented schema.
func TestReportSchema(t *testing.T) {
	t.Parallel()
	r := NewReport(goldenInvocation())
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"source", "pid", "binary", "flags"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	f := m["flags"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "value", "explicit"} {
		if _, ok := f[k]; !ok {
			t.Errorf("flag entry lacks %q", k)
		}
	}
	// The YAML form is the same document.
	var back Report
	y, _ := yaml.Marshal(r)
	if err := yaml.Unmarshal(y, &back); err != nil || back.PID != 4242 || len(back.Flags) != len(r.Flags) {
		t.Errorf("yaml round trip: %v %+v", err, back)
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"One. Two.":              "One.",
		"First line\nsecond":     "First line",
		"no period":              "no period",
		strings.Repeat("x", 150): strings.Repeat("x", 99) + "…",
		"Use 1.5 or 2. Then":     "Use 1.5 or 2.",
	}
	for in, want := range tests {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	inv := goldenInvocation()
	var out bytes.Buffer
	err := Explain(&out, []string{"--secure-port", "v", "client_ca_file", "max-requests-inflight", "no-such-flag"}, inv, fakeCatalog, "")
	if err == nil || !strings.Contains(err.Error(), "--no-such-flag") {
		t.Errorf("err = %v, want one naming --no-such-flag", err)
	}
	checkGolden(t, "explain.golden", out.Bytes())

	out.Reset()
	if err := Explain(&out, []string{"secure-port"}, nil, nil, "no kube-apiserver found"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"unavailable", "current: unknown (no kube-apiserver found)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("without catalog or source, output lacks %q:\n%s", want, out.String())
		}
	}
}
