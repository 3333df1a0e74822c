package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/supervisor"
)

// BenchmarkInitToReady measures "nothing → ready API" (kube-apiserver's /readyz answering) for
// kubestrap init, and compares it with a baseline in the same run: the same etcd and kube-apiserver
// programs started by hand, with certificates made in advance (the baseline's clock starts at the
// first process start). By hand means as an operator does it: etcd, then kube-apiserver once etcd
// answers. A second baseline starts both at once, as kubestrap's supervisor does, so that the figure
// shows how much of the difference is that choice rather than init's own cost. It also reports when
// init itself returns: after the controller-manager and scheduler are healthy, the controllers run,
// and the cluster objects exist; and when kube-apiserver's process started in kubestrap's run (the
// supervisor's record) and in the by-hand one, which splits each figure into what comes before
// the apiserver and the apiserver's own start-up. Each run also records when etcd first answered
// (its /readyz, polled alongside): kube-apiserver waits for an etcd connection before most of its
// start-up (its first storage blocks until the gRPC connection is ready, and etcd serves clients
// only after its first election), so "ready after etcd" is the part no start order can overlap.
//
// The three kinds of run alternate (each iteration runs each once, in a rotating order), so that a
// change of the machine's load during the benchmark (it is shared) weighs on all of them alike;
// each metric is the median of its b.N runs, and the ratios are of those medians. A run of
// kubestrap init starts from an empty root dir, so it includes extracting the component program
// there (the release shape's first-run cost).
//
//	go test -run '^$' -bench InitToReady -benchtime 5x ./internal/e2e/
func BenchmarkInitToReady(b *testing.B) {
	// The by-hand runs' certificates, kubeconfigs and component program, made once.
	handRoot := b.TempDir()
	cfgFile := writeConfig(b, b.TempDir(), 25000)
	for _, phase := range [][]string{{"certs", "all"}, {"kubeconfig", "all"}, {"control-plane", "apiserver"}} {
		if r := runB(b, append(append([]string{"init", "phase"}, phase...), "--root-dir", handRoot, "--config", cfgFile, "--mode", "local")...); r.code != 0 {
			b.Fatalf("init phase %v: %s", phase, r.stderr)
		}
	}
	cfg, err := config.LoadInit(cfgFile, config.Overrides{}, config.SystemHost{})
	if err != nil {
		b.Fatal(err)
	}
	hp := paths.MustUnder(handRoot)
	cps := components.ControlPlane(cfg, hp)[:2] // etcd, kube-apiserver
	prog := componentProgram(b, handRoot)

	var inits, initTotals, hands, together []time.Duration
	// When kube-apiserver's process started, from the start of the run: what comes before it.
	var initAPIStarts, handAPIStarts []time.Duration
	// When etcd first answered, and how long after that the apiserver was ready.
	var initEtcd, handEtcd, togetherEtcd, initAfterEtcd, handAfterEtcd, togetherAfterEtcd []time.Duration
	etcdURL := cps[0].HealthURL()
	defer func() { // medians of the runs (ReportMetric keeps one value per metric)
		b.ReportMetric(median(initAPIStarts).Seconds(), "s/apiserver-exec-kubestrap")
		b.ReportMetric(median(handAPIStarts).Seconds(), "s/apiserver-exec-by-hand")
		b.ReportMetric(median(initEtcd).Seconds(), "s/etcd-ready-kubestrap")
		b.ReportMetric(median(handEtcd).Seconds(), "s/etcd-ready-by-hand")
		b.ReportMetric(median(togetherEtcd).Seconds(), "s/etcd-ready-together")
		b.ReportMetric(median(initAfterEtcd).Seconds(), "s/ready-after-etcd-kubestrap")
		b.ReportMetric(median(handAfterEtcd).Seconds(), "s/ready-after-etcd-by-hand")
		b.ReportMetric(median(togetherAfterEtcd).Seconds(), "s/ready-after-etcd-together")
		b.ReportMetric(median(inits).Seconds(), "s/ready-kubestrap")
		b.ReportMetric(median(hands).Seconds(), "s/ready-by-hand")
		b.ReportMetric(median(together).Seconds(), "s/ready-by-hand-together")
		b.ReportMetric(ratio(median(inits), median(hands)), "ratio-vs-by-hand")
		b.ReportMetric(ratio(median(inits), median(together)), "ratio-vs-together")
		b.ReportMetric(median(initTotals).Seconds(), "s/init-complete")
	}()
	kubestrapInit := func() {
		root := b.TempDir()
		cmd := exec.Command(binary, "init", "--root-dir", root, "--config", cfgFile)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan struct{})
		var werr error
		go func() { werr = cmd.Wait(); close(exited) }()
		// "Ready API" is the apiserver's /readyz answering, polled from outside while init goes
		// on to wait for the other components and create the cluster objects. An init that
		// fails first ends the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		go func() {
			select {
			case <-exited:
				cancel()
			case <-ctx.Done():
			}
		}()
		etcdReady := whenReady(ctx, etcdURL, start)
		rerr := supervisor.WaitHealthy(ctx, "https://127.0.0.1:31443/readyz", 20*time.Millisecond)
		ready := time.Since(start)
		etcdAt, eerr := etcdReady()
		cancel()
		if rerr == nil && eerr != nil {
			rerr = eerr
		}
		if rerr != nil {
			cmd.Process.Kill()
			<-exited
			runB(b, "stop", "--root-dir", root)
			b.Fatalf("kube-apiserver not ready: %v; init: %v\n%s", rerr, werr, stderr.String())
		}
		// The supervisor's record of the apiserver's start (a restarted one would say nothing).
		if rep, err := supervisor.Status(paths.MustUnder(root), nil); err == nil {
			for _, c := range rep.Components {
				if c.Name == components.APIServerName && c.Restarts == 0 && !c.StartedAt.IsZero() {
					initAPIStarts = append(initAPIStarts, c.StartedAt.Sub(start))
				}
			}
		}
		<-exited
		total := time.Since(start)
		runB(b, "stop", "--root-dir", root)
		if werr != nil {
			b.Fatalf("init: %v\n%s", werr, stderr.String())
		}
		inits, initTotals = append(inits, ready), append(initTotals, total)
		initEtcd, initAfterEtcd = append(initEtcd, etcdAt), append(initAfterEtcd, ready-etcdAt)
		os.RemoveAll(root) // 200 MB of component program per run
	}
	byHand := func(waitEtcd bool) func() {
		return func() {
			os.RemoveAll(hp.EtcdDataDir(""))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			etcdReady := whenReady(ctx, etcdURL, start)
			procs, started := startByHand(b, prog, cps, waitEtcd)
			waitReady(b, cps[1].HealthURL())
			elapsed := time.Since(start)
			etcdAt, err := etcdReady()
			stopByHand(procs)
			if err != nil {
				b.Fatal(err)
			}
			if waitEtcd {
				hands = append(hands, elapsed)
				handAPIStarts = append(handAPIStarts, started[1].Sub(start))
				handEtcd, handAfterEtcd = append(handEtcd, etcdAt), append(handAfterEtcd, elapsed-etcdAt)
			} else {
				together = append(together, elapsed)
				togetherEtcd, togetherAfterEtcd = append(togetherEtcd, etcdAt), append(togetherAfterEtcd, elapsed-etcdAt)
			}
		}
	}
	runs := []func(){kubestrapInit, byHand(true), byHand(false)}
	for i := 0; i < b.N; i++ {
		for j := range runs {
			runs[(i+j)%len(runs)]()
		}
	}
}

// whenReady polls url from now on, in the background; the function it returns waits for the
// answer and says how long after start it came.
func whenReady(ctx context.Context, url string, start time.Time) func() (time.Duration, error) {
	done := make(chan struct{})
	var at time.Duration
	var err error
	go func() {
		defer close(done)
		if err = supervisor.WaitHealthy(ctx, url, 20*time.Millisecond); err == nil {
			at = time.Since(start)
		}
	}()
	return func() (time.Duration, error) { <-done; return at, err }
}

// ratio is a/b (0 without a baseline).
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// BenchmarkIdleRSS reports the memory of an idle local-mode control plane (the four components; the
// supervisor separately) against the same four components built as separate upstream programs and
// started by hand with the same flags. RSS counts the pages of the shared kubestrap binary once per
// process; PSS divides shared pages among the processes that map them, so it is the figure that adds
// up to what the machine really spends.
//
//	go test -run '^$' -bench IdleRSS -benchtime 1x ./internal/e2e/
func BenchmarkIdleRSS(b *testing.B) {
	const settle = 60 * time.Second // issue 16: memory of the control plane after 60 s
	for i := 0; i < b.N; i++ {
		root := b.TempDir()
		cfgFile := writeConfig(b, b.TempDir(), 25000)
		if r := runB(b, "init", "--root-dir", root, "--config", cfgFile); r.code != 0 {
			b.Fatalf("init: %s", r.stderr)
		}
		time.Sleep(settle)
		var bundled, bundledPss, bundledAPIPss int64
		for _, c := range controlPlaneNames {
			pss := memKiB(b, pidFile(b, root, c), "Pss:")
			bundled += memKiB(b, pidFile(b, root, c), "Rss:")
			bundledPss += pss
			if c == components.APIServerName {
				bundledAPIPss = pss
			}
		}
		sup := memKiB(b, pidFile(b, root, "supervisor"), "Pss:")
		// kubestrap's own approver of kubelet serving certificates has no upstream counterpart
		// among the four: reported beside them, like the supervisor.
		approver := memKiB(b, pidFile(b, root, components.CSRApproverName), "Pss:")
		runB(b, "stop", "--root-dir", root)

		// The upstream programs, linked separately from the same module versions.
		binDir := b.TempDir()
		upstream := map[string]string{
			"etcd":                    "go.etcd.io/etcd/server/v3",
			"kube-apiserver":          "k8s.io/kubernetes/cmd/kube-apiserver",
			"kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
			"kube-scheduler":          "k8s.io/kubernetes/cmd/kube-scheduler",
		}
		for name, pkg := range upstream {
			if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput(); err != nil {
				b.Fatalf("build %s: %v\n%s", pkg, err, out)
			}
		}
		root2 := b.TempDir()
		for _, phase := range [][]string{{"certs", "all"}, {"kubeconfig", "all"}, {"control-plane", "apiserver"}} {
			runB(b, append(append([]string{"init", "phase"}, phase...), "--root-dir", root2, "--config", cfgFile, "--mode", "local")...)
		}
		cfg, err := config.LoadInit(cfgFile, config.Overrides{}, config.SystemHost{})
		if err != nil {
			b.Fatal(err)
		}
		var procs []*exec.Cmd
		for _, c := range components.ControlPlane(cfg, paths.MustUnder(root2)) {
			if !slices.Contains(controlPlaneNames, c.Name) {
				continue // the CSR approver: kubestrap's, not one of the upstream programs
			}
			started, _ := startByHand(b, filepath.Join(binDir, c.Name), []components.Component{c}, false)
			procs = append(procs, started...)
			if c.Name == "etcd" || c.Name == "kube-apiserver" {
				waitReady(b, c.HealthURL())
			}
		}
		time.Sleep(settle)
		var separate, separatePss, separateAPIPss int64
		for _, p := range procs {
			pss := memKiB(b, p.Process.Pid, "Pss:")
			separate += memKiB(b, p.Process.Pid, "Rss:")
			separatePss += pss
			if filepath.Base(p.Path) == components.APIServerName {
				separateAPIPss = pss
			}
		}
		stopByHand(procs)
		b.ReportMetric(float64(bundled)/1024, "MiB-RSS-bundled")
		b.ReportMetric(float64(separate)/1024, "MiB-RSS-separate")
		b.ReportMetric(float64(bundledPss)/1024, "MiB-PSS-bundled")
		b.ReportMetric(float64(separatePss)/1024, "MiB-PSS-separate")
		b.ReportMetric(float64(bundledAPIPss)/1024, "MiB-PSS-bundled-apiserver")
		b.ReportMetric(float64(separateAPIPss)/1024, "MiB-PSS-separate-apiserver")
		b.ReportMetric(float64(sup)/1024, "MiB-PSS-supervisor")
		b.ReportMetric(float64(approver)/1024, "MiB-PSS-csr-approver")
		b.ReportMetric(float64(bundledPss+sup)/float64(separatePss), "PSS-ratio-with-supervisor")
	}
}

// median of ds (0 for none).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// componentProgram returns the program that runs the components, as one would start them by hand:
// the component program the front binary carries, extracted under root (init extracts it there
// too), or the binary under test itself when it is a monolith.
func componentProgram(b *testing.B, root string) string {
	b.Helper()
	if out, err := frontComponent(root).CombinedOutput(); err != nil {
		b.Fatalf("kubestrap etcd --version: %v\n%s", err, out)
	}
	progs, _ := filepath.Glob(filepath.Join(paths.MustUnder(root).BinDir(), "*", "kubestrap"))
	switch len(progs) {
	case 0:
		return binary
	case 1:
		return progs[0]
	}
	b.Fatalf("several component programs under %s: %v", root, progs)
	return ""
}

func runB(b *testing.B, args ...string) result {
	b.Helper()
	cmd := exec.Command(binary, args...)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		b.Fatal(err)
	}
	return r
}

// startByHand starts each component from exe (a multi-call kubestrap runs it by name); with
// waitEtcd, the next one only once etcd answers. It returns the processes and when each started.
func startByHand(b *testing.B, exe string, cps []components.Component, waitEtcd bool) (procs []*exec.Cmd, started []time.Time) {
	for _, c := range cps {
		args := c.Args
		if filepath.Base(exe) == "kubestrap" {
			args = append([]string{c.Name}, args...)
		}
		cmd := exec.Command(exe, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		started = append(started, time.Now())
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		procs = append(procs, cmd)
		if waitEtcd && c.Name == "etcd" {
			waitReady(b, c.HealthURL())
		}
	}
	return procs, started
}

func stopByHand(procs []*exec.Cmd) {
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Process.Signal(syscall.SIGTERM)
		procs[i].Wait()
	}
}

func waitReady(b *testing.B, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := supervisor.WaitHealthy(ctx, url, 20*time.Millisecond); err != nil {
		b.Fatalf("%s: %v", url, err)
	}
}

func pidFile(b *testing.B, root, name string) int {
	data, err := os.ReadFile(filepath.Join(root, "run/kubestrap", name+".pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

// memKiB reads one field ("Rss:", "Pss:") of a process's /proc/PID/smaps_rollup, in KiB.
func memKiB(b *testing.B, pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	b.Fatalf("no %s in smaps_rollup of %d", field, pid)
	return 0
}
