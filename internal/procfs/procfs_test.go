package procfs

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// newFakeProc is a /proc look-alike: add lays out a process's cmdline, comm and stat.
func newFakeProc(t *testing.T) *fakeProc { return &fakeProc{t: t, root: t.TempDir()} }

type fakeProc struct {
	t    *testing.T
	root string
}

func (f *fakeProc) add(pid int, state byte, argv ...string) {
	f.t.Helper()
	dir := filepath.Join(f.root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	cmdline, comm := "", "x"
	if len(argv) > 0 {
		cmdline = strings.Join(argv, "\x00") + "\x00"
		comm = filepath.Base(argv[0])
	}
	stat := strconv.Itoa(pid) + " (" + comm + ") " + string(state) + " 1 " + strconv.Itoa(pid) + " " + strconv.Itoa(pid) + " 0 -1\n"
	for name, content := range map[string]string{"cmdline": cmdline, "comm": comm + "\n", "stat": stat} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

func TestProcFS(t *testing.T) {
	t.Parallel()
	f := newFakeProc(t)
	f.add(10, 'S', "/bin/sleep", "60")
	f.add(11, 'Z')
	f.add(12, 'R', "weird")
	// A command name with spaces and parentheses must not confuse the stat parser.
	os.WriteFile(filepath.Join(f.root, "12", "stat"), []byte("12 (a) b (c) S 1 12 12 0 -1\n"), 0o644)
	os.MkdirAll(filepath.Join(f.root, "self"), 0o755)
	fs := FS{Root: f.root}

	pids, err := fs.Pids()
	slices.Sort(pids)
	if err != nil || !slices.Equal(pids, []int{10, 11, 12}) {
		t.Errorf("Pids = %v, %v; want [10 11 12]", pids, err)
	}
	if argv, err := fs.Cmdline(10); err != nil || !slices.Equal(argv, []string{"/bin/sleep", "60"}) {
		t.Errorf("Cmdline(10) = %q, %v", argv, err)
	}
	if argv, err := fs.Cmdline(11); err != nil || argv != nil {
		t.Errorf("Cmdline of a zombie = %q, %v; want empty", argv, err)
	}
	if _, err := fs.Cmdline(99); err == nil {
		t.Error("Cmdline of a missing process: no error")
	}
	for pid, want := range map[int]bool{10: true, 11: false, 12: true, 99: false} {
		if got := fs.Alive(pid); got != want {
			t.Errorf("Alive(%d) = %v, want %v", pid, got, want)
		}
	}
	if st, err := fs.Stat(12); err != nil || st.State != 'S' || st.PPID != 1 || st.Session != 12 {
		t.Errorf("Stat(12) = %+v, %v", st, err)
	}
	if got := fs.Parent(10); got != 1 {
		t.Errorf("Parent(10) = %d, want 1", got)
	}
	if comm, err := fs.Comm(10); err != nil || comm != "sleep" {
		t.Errorf("Comm(10) = %q, %v", comm, err)
	}
}

func TestProcFSReal(t *testing.T) {
	t.Parallel()
	fs := FS{}
	self := os.Getpid()
	if !fs.Alive(self) {
		t.Fatal("this process is not alive according to /proc")
	}
	argv, err := fs.Cmdline(self)
	if err != nil || len(argv) == 0 || argv[0] != os.Args[0] {
		t.Errorf("Cmdline(self) = %q, %v; want argv[0] %q", argv, err, os.Args[0])
	}
	st, err := fs.Stat(self)
	if err != nil || st.PPID != os.Getppid() || fs.Parent(self) != os.Getppid() || fs.MountNS(self) == "" {
		t.Errorf("Stat(self) = %+v, %v; want ppid %d", st, err, os.Getppid())
	}
}

func TestSplitCmdline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a\x00", []string{"a"}},
		{"a\x00--x=1 2\x00\x00", []string{"a", "--x=1 2", ""}},
		{"no-terminator", []string{"no-terminator"}},
	}
	for _, tt := range tests {
		if got := SplitCmdline([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		want Mapping
		ok   bool
	}{
		{"00400000-0052a000 r--p 00000000 fd:01 1835231 /usr/local/bin/kubestrap", Mapping{Start: 0x400000, End: 0x52a000, Dev: "fd:01", Inode: 1835231}, true},
		{"7f3a1c000000-7f3a1c021000 rw-p 0001f000 00:00 0 ", Mapping{Start: 0x7f3a1c000000, End: 0x7f3a1c021000, Offset: 0x1f000, Dev: "00:00"}, true},
		{"7ffd5b1f0000-7ffd5b211000 rw-p 00000000 00:00 0                          [stack]", Mapping{Start: 0x7ffd5b1f0000, End: 0x7ffd5b211000, Dev: "00:00"}, true},
		{"00400000 r--p 00000000 fd:01 1835231", Mapping{}, false},    // no range
		{"00400000-0052a000 r--p 00000000 fd:01", Mapping{}, false},   // no inode
		{"0040000g-0052a000 r--p 00000000 fd:01 1", Mapping{}, false}, // not hex
		{"", Mapping{}, false},
	} {
		got, ok := ParseMapping(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseMapping(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}
