package systemd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kubestrap/kubestrap/internal/paths"
)

func TestSplitWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc ", []string{"a", "b", "c"}},
		{`"a b" 'c d'`, []string{"a b", "c d"}},
		{`--x="a b"c`, []string{"--x=a bc"}},
		{`a\ b \x41 \\ \"`, []string{"a b", "A", `\`, `"`}},
		{`'no \n escape'`, []string{`no \n escape`}},
		{`""`, []string{""}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestReadExecStart: the command line of any service (not only kube-apiserver's), with a drop-in
// replacing ExecStart=, specifiers resolved for that service, and variables carrying their origin.
func TestReadExecStart(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(p.SystemdUnit("etcd.service"), "[Service]\nExecStart=/usr/bin/etcd --data-dir=/var/lib/etcd\n")
	write(filepath.Join(p.SystemdUnit("etcd.service.d"), "20-data.conf"), "[Service]\nExecStart=\nExecStart=-/usr/bin/etcd --name=%n \\\n  --data-dir=${DIR}\n")
	write(filepath.Join(p.SystemdUnit("etcd.service.d"), "30-env.conf"), "[Service]\nEnvironment=\"DIR=/srv/etcd\"\n")
	exec, err := ReadExecStart(p, "etcd.service")
	if err != nil {
		t.Fatal(err)
	}
	want := []Word{
		{"/usr/bin/etcd", "unit drop-in 20-data.conf"},
		{"--name=etcd.service", "unit drop-in 20-data.conf"},
		{"--data-dir=/srv/etcd", "unit drop-in 30-env.conf"},
	}
	if !reflect.DeepEqual(exec.Words, want) || exec.Path != p.SystemdUnit("etcd.service") {
		t.Errorf("ReadExecStart = %s %+v\nwant %+v", exec.Path, exec.Words, want)
	}
	if got := exec.Args(); !reflect.DeepEqual(got, []string{"--name=etcd.service", "--data-dir=/srv/etcd"}) {
		t.Errorf("Args() = %q", got)
	}
	if _, err := ReadExecStart(p, "kube-apiserver.service"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing unit: %v, want ErrNotExist", err)
	}
}
