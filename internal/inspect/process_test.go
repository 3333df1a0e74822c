package inspect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/procfs"
)

func pids(ps []Process) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

func TestScan(t *testing.T) {
	t.Parallel()
	procDir := t.TempDir()
	root := "/tmp/cluster-a"
	other := "/tmp/cluster-ab" // a sibling whose name starts like root's: must not count
	bin := root + "/var/lib/kubestrap/bin/kube-apiserver"
	writeProc(t, procDir,
		fakeProc{1, "systemd", []string{"/sbin/init"}},
		// The local-mode component: started through the kube-apiserver symlink.
		fakeProc{100, "kube-apiserver", append([]string{bin}, "--client-ca-file="+root+"/etc/kubernetes/pki/ca.crt")},
		// The multi-call form, under kubestrap's own name.
		fakeProc{101, "kubestrap", []string{"/usr/bin/kubestrap", "kube-apiserver", "--etcd-servers=x", "--tls-cert-file=" + root + "/etc/kubernetes/pki/apiserver.crt"}},
		// kubestrap doing something else.
		fakeProc{102, "kubestrap", []string{"/usr/bin/kubestrap", "show-apiserver-options", "--root-dir=" + root}},
		// Re-executed through /proc/self/exe.
		fakeProc{103, "exe", []string{"kube-apiserver", "--key=" + root + "/k,/other/k"}},
		// Another cluster's apiserver, and one for the sibling root.
		fakeProc{200, "kube-apiserver", []string{"/tmp/cluster-b/var/lib/kubestrap/bin/kube-apiserver", "--client-ca-file=/tmp/cluster-b/ca.crt"}},
		fakeProc{201, "kube-apiserver", []string{other + "/bin/kube-apiserver", "--client-ca-file=" + other + "/ca.crt"}},
		// A renamed kubestrap binary, recognised through ExtraComms (comm truncated to 15 bytes).
		fakeProc{300, "my-very-long-kubestrap-build", []string{"./my-very-long-kubestrap-build", "kube-apiserver", "--cert-dir=" + root + "/pki"}},
		// Processes that merely mention kube-apiserver.
		fakeProc{400, "pgrep", []string{"pgrep", "kube-apiserver"}},
		fakeProc{401, "bash", []string{"bash", "-c", "kube-apiserver --secure-port=1"}},
		// A zombie: comm stays, cmdline is empty.
		fakeProc{500, "kube-apiserver", nil},
		// Unreadable (see readHook below).
		fakeProc{600, "kube-apiserver", []string{"kube-apiserver"}},
		fakeProc{601, "sshd", []string{"sshd"}},
	)
	// Entries that are not processes, and a process that exited between readdir and read.
	for _, d := range []string{"self", "sys", "0abc", "700"} {
		if err := os.MkdirAll(filepath.Join(procDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := ProcScanner{
		ProcDir:    procDir,
		Root:       paths.MustUnder(root),
		ExtraComms: []string{"my-very-long-kubestrap-build"},
		readHook: func(pid int, file string) error {
			if (pid == 600 && file == "cmdline") || (pid == 601 && file == "comm") {
				return &os.PathError{Op: "open", Path: file, Err: syscall.EACCES}
			}
			return nil
		},
	}
	res, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pids(res.Processes), []int{100, 101, 103, 300}; !reflect.DeepEqual(got, want) {
		t.Errorf("processes = %v, want %v", got, want)
	}
	if got, want := pids(res.OutsideRoot), []int{200, 201}; !reflect.DeepEqual(got, want) {
		t.Errorf("outside root = %v, want %v", got, want)
	}
	if len(res.Denied) != 1 || res.Denied[0].PID != 600 || !errors.Is(res.Denied[0].Err, fs.ErrPermission) {
		t.Errorf("denied = %+v, want pid 600 with a permission error", res.Denied)
	}
	if res.Scanned != 14 || res.Unreadable != 1 {
		t.Errorf("scanned %d unreadable %d, want 14 and 1", res.Scanned, res.Unreadable)
	}

	// With the real root every kube-apiserver counts.
	s.Root = paths.MustUnder("/")
	res, err = s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pids(res.Processes), []int{100, 101, 103, 200, 201, 300}; !reflect.DeepEqual(got, want) {
		t.Errorf("real root: processes = %v, want %v", got, want)
	}
}

func TestProcessInvocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		argv       []string
		wantBinary string
	}{
		{append([]string{"/r/var/lib/kubestrap/bin/kube-apiserver"}, fixtureArgs...), "/r/var/lib/kubestrap/bin/kube-apiserver"},
		{append([]string{"/usr/bin/kubestrap", "kube-apiserver"}, fixtureArgs...), "/usr/bin/kubestrap kube-apiserver"},
	}
	for _, tt := range tests {
		inv := Process{PID: 7, Argv: tt.argv}.Invocation(fakeCatalog)
		if inv.Binary != tt.wantBinary || inv.PID != 7 || inv.Location != "/proc/7/cmdline" {
			t.Errorf("binary %q pid %d location %q", inv.Binary, inv.PID, inv.Location)
		}
		if got := argsOf(inv.Flags); got != strings.Join(fixtureArgs, " ") {
			t.Errorf("flags %q", got)
		}
		if inv.Flags[0].Origin != "process 7" {
			t.Errorf("origin %q", inv.Flags[0].Origin)
		}
	}
}

// BenchmarkScan scans a synthetic /proc of 5,000 processes, a busy host: most are unrelated
// programs, a few are kubestrap running other commands, one is the apiserver.
func BenchmarkScan(b *testing.B) {
	procDir := b.TempDir()
	comms := []string{"bash", "sshd", "containerd-shim", "kworker/0:1", "python3", "nginx", "postgres", "java"}
	var procs []fakeProc
	for i := 0; i < 5000; i++ {
		pid := 1000 + i
		switch {
		case i == 2500:
			procs = append(procs, fakeProc{pid, "kube-apiserver", append([]string{"/var/lib/kubestrap/bin/kube-apiserver"}, fixtureArgs...)})
		case i%500 == 0:
			procs = append(procs, fakeProc{pid, "kubestrap", []string{"/usr/bin/kubestrap", "supervise", "--root-dir=/"}})
		default:
			c := comms[i%len(comms)]
			procs = append(procs, fakeProc{pid, c, []string{"/usr/bin/" + c, "--some-flag", fmt.Sprint(i)}})
		}
	}
	writeProc(b, procDir, procs...)
	s := ProcScanner{ProcDir: procDir, Root: paths.MustUnder("/")}
	for b.Loop() {
		res, err := s.Scan()
		if err != nil || len(res.Processes) != 1 || res.Scanned != 5000 {
			b.Fatalf("scan: %v, %d processes of %d", err, len(res.Processes), res.Scanned)
		}
	}
}

// BenchmarkScanBaseline is the straightforward scan the real one is measured against: read every
// process's cmdline with os.ReadFile and look at argv[0].
func BenchmarkScanBaseline(b *testing.B) {
	procDir := b.TempDir()
	var procs []fakeProc
	for i := 0; i < 5000; i++ {
		c := "bash"
		if i == 2500 {
			c = "kube-apiserver"
		}
		procs = append(procs, fakeProc{1000 + i, c, append([]string{"/usr/bin/" + c}, fixtureArgs...)})
	}
	writeProc(b, procDir, procs...)
	for b.Loop() {
		names, err := os.ReadDir(procDir)
		if err != nil {
			b.Fatal(err)
		}
		found := 0
		for _, n := range names {
			data, err := os.ReadFile(filepath.Join(procDir, n.Name(), "cmdline"))
			if err != nil {
				continue
			}
			if argv := procfs.SplitCmdline(data); len(argv) > 0 && filepath.Base(argv[0]) == Component {
				found++
			}
		}
		if found != 1 {
			b.Fatalf("found %d", found)
		}
	}
}
