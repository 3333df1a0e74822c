package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStartup measures whole commands that do not run a component, the front program under
// test (the release shape, hack/build.sh) against its baseline in the same run: the monolith a
// plain `go build ./cmd/kubestrap` makes, which links the four components and pays their package
// initialisation on every command. Each sub-benchmark reports the median wall time and the median
// peak RSS (wait4's ru_maxrss) of its runs. status and show-apiserver-options read a running
// local-mode control plane (process source).
//
//	go test -run '^$' -bench Startup -benchtime 20x ./internal/e2e/
func BenchmarkStartup(b *testing.B) {
	monolith := buildMonolith(b)
	root := b.TempDir()
	cfgFile := writeConfig(b, b.TempDir(), 24000)
	if r := runB(b, "init", "--root-dir", root, "--config", cfgFile); r.code != 0 {
		b.Fatalf("init: %s", r.stderr)
	}
	b.Cleanup(func() { runB(b, "stop", "--root-dir", root) })
	commands := []struct {
		name string
		args []string
	}{
		{"version", []string{"version"}},
		{"status", []string{"status", "--root-dir", root}},
		{"show-apiserver-options", []string{"show-apiserver-options", "--root-dir", root, "-o", "args"}},
	}
	for _, c := range commands {
		for _, bin := range []struct{ name, path string }{{"front", binary}, {"monolith", monolith}} {
			b.Run(c.name+"/"+bin.name, func(b *testing.B) {
				timeCommands(b, func() *exec.Cmd { return exec.Command(bin.path, c.args...) })
			})
		}
	}
}

// BenchmarkFirstRun measures what the front adds to running a component: the first run installs
// the embedded component program into a new root's store (the kernel's copy of its range of the
// front's file, fsync, rename) before executing it; later runs verify it (owner, mode, SHA-256)
// and execute it. The baseline is the same
// component started from the monolith directly. The component is `etcd --version` so that only
// start-up is timed.
//
//	go test -run '^$' -bench FirstRun -benchtime 5x ./internal/e2e/
func BenchmarkFirstRun(b *testing.B) {
	monolith := buildMonolith(b)
	b.Run("front-extract", func(b *testing.B) {
		timeCommands(b, func() *exec.Cmd {
			b.StopTimer()
			root, err := os.MkdirTemp(b.TempDir(), "root-")
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			return frontComponent(root)
		})
	})
	b.Run("front-verified", func(b *testing.B) {
		root := b.TempDir()
		if out, err := frontComponent(root).CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		timeCommands(b, func() *exec.Cmd { return frontComponent(root) })
	})
	b.Run("monolith", func(b *testing.B) {
		timeCommands(b, func() *exec.Cmd { return exec.Command(monolith, "etcd", "--version") })
	})
}

func frontComponent(root string) *exec.Cmd {
	cmd := exec.Command(binary, "etcd", "--version")
	cmd.Env = append(os.Environ(), "KUBESTRAP_ROOT_DIR="+root)
	return cmd
}

// timeCommands runs b.N commands one after the other and reports the median wall time and peak
// RSS; a failing command fails the benchmark.
func timeCommands(b *testing.B, next func() *exec.Cmd) {
	var times []time.Duration
	var rss []int64
	for i := 0; i < b.N; i++ {
		cmd := next()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		elapsed := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		times = append(times, elapsed)
		rss = append(rss, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // KiB on Linux
	}
	slices.Sort(times)
	slices.Sort(rss)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "ms-max")
	b.ReportMetric(float64(rss[len(rss)/2])/1024, "MiB-maxrss-median")
}

// buildMonolith builds the plain `go build ./cmd/kubestrap` binary, the baseline of the front.
func buildMonolith(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "kubestrap")
	if out, err := exec.Command("go", "build", "-o", path, "github.com/kubestrap/kubestrap/cmd/kubestrap").CombinedOutput(); err != nil {
		b.Fatalf("build the monolith: %v\n%s", err, out)
	}
	return path
}
