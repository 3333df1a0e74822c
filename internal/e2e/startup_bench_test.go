package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	front, monolith := installedCopy(b, binary), installedCopy(b, buildMonolith(b))
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
		for _, bin := range []struct{ name, path string }{{"front", front}, {"monolith", monolith}} {
			b.Run(c.name+"/"+bin.name, func(b *testing.B) {
				timeCommands(b, func() *exec.Cmd { return exec.Command(bin.path, c.args...) })
			})
		}
	}
}

// installedCopy writes a copy of the program at path with write(2), as an installer does, drops
// it from the page cache, and returns the copy's path. Peak RSS depends on how the program's file
// sits in the page cache (the kernel maps a cached file into a process in pieces as large as the
// cache holds it in): the same front measured 74 MB peak RSS for `version` straight after the Go
// linker wrote it, 62 MB after a copy in 1 MiB writes, 41 MB after `cp`, and 41 MB read back from
// disk after dropping the page cache, which is the state this leaves it in.
func installedCopy(b *testing.B, path string) string {
	b.Helper()
	src, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(b.TempDir(), filepath.Base(path))
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		b.Fatal(err)
	}
	// A small buffer through plain Read and Write calls: not the whole program in this process's
	// memory (a child's ru_maxrss starts from its parent's size at fork), and not
	// copy_file_range, which io.Copy would use between two files.
	buf := make([]byte, 1<<20)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				b.Fatal(err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			b.Fatal(rerr)
		}
	}
	// Then out of the page cache, so the program's pages come back from disk as on a host that
	// just booted: how a file came into the cache decides how much of it the kernel maps per
	// fault, and with it the peak RSS (see above).
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fadvise(int(out.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return dst
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
	gnuTime, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		b.Fatalf("peak RSS is measured with GNU time: install it (apt-get install time): %v", err)
	}
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
		rss = append(rss, peakRSS(b, gnuTime, next()))
	}
	slices.Sort(times)
	slices.Sort(rss)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "ms-max")
	b.ReportMetric(float64(rss[len(rss)/2])/1024, "MiB-maxrss-median")
}

// peakRSS runs cmd under GNU time and returns its peak RSS in KiB. Not cmd's own wait4 rusage: Go
// starts a child sharing this process's memory until the exec (vfork), and the kernel counts that
// memory in the child's ru_maxrss, so a measured program never looked smaller than this test
// process (about 60 MiB). GNU time is small and forks a copy of itself, so the figure is the
// program's own.
func peakRSS(b *testing.B, gnuTime string, cmd *exec.Cmd) int64 {
	b.Helper()
	report := filepath.Join(b.TempDir(), "rss")
	timed := exec.Command(gnuTime, append([]string{"-f", "%M", "-o", report, cmd.Path}, cmd.Args[1:]...)...)
	timed.Env, timed.Dir = cmd.Env, cmd.Dir
	if out, err := timed.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", timed, err, out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		b.Fatal(err)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		b.Fatalf("GNU time's report %q: %v", data, err)
	}
	return kib
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
