package inspect

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/golden"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// testdataDir is the repository's testdata/inspect.
var testdataDir = filepath.Join("..", "..", "testdata", "inspect")

// fakeCatalog stands in for the bundled kube-apiserver's flag set: a few real options with their
// real types and defaults.
var fakeCatalog = NewCatalog([]FlagInfo{
	{Name: "advertise-address", Type: "ip", Default: "<nil>", Usage: "The IP address on which to advertise the apiserver to members of the cluster. This address must be reachable by the rest of the cluster."},
	{Name: "audit-log-maxage", Type: "int", Default: "0", Usage: "The maximum number of days to retain old audit log files based on the timestamp encoded in their filename."},
	{Name: "enable-bootstrap-token-auth", Type: "bool", Default: "false", Usage: "Enable to allow secrets of type 'bootstrap.kubernetes.io/token' in the 'kube-system' namespace to be used for TLS bootstrapping authentication."},
	{Name: "allow-privileged", Type: "bool", Default: "false", Usage: "If true, allow privileged containers. [default=false]"},
	{Name: "authorization-mode", Type: "strings", Default: "[]", Usage: "Ordered list of plug-ins to do authorization on secure port."},
	{Name: "client-ca-file", Type: "string", Default: "", Usage: "If set, any request presenting a client certificate signed by one of the authorities in the client-ca-file is authenticated."},
	{Name: "enable-admission-plugins", Type: "strings", Default: "[]", Usage: "admission plugins that should be enabled in addition to default enabled ones."},
	{Name: "etcd-servers", Type: "strings", Default: "[]", Usage: "List of etcd servers to connect with (scheme://ip:port), comma separated."},
	{Name: "max-requests-inflight", Type: "int", Default: "400", Usage: "This and --max-mutating-requests-inflight are summed to determine the server's total concurrency limit.\nWhen zero, no limit."},
	{Name: "profiling", Type: "bool", Default: "true", Usage: "Enable profiling via web interface host:port/debug/pprof/"},
	{Name: "secure-port", Type: "int", Default: "6443", Usage: "The port on which to serve HTTPS with authentication and authorization. It cannot be switched off with 0."},
	{Name: "service-cluster-ip-range", Type: "string", Default: "", Usage: "A CIDR notation IP range from which to assign service cluster IPs."},
	{Name: "tls-cipher-suites", Type: "strings", Default: "[]", Usage: "Comma-separated list of cipher suites for the server."},
	{Name: "v", Type: "Level", Default: "0", Usage: "number for the log level verbosity"},
})

// fixtureArgs are the flags of the testdata manifest and unit, as a process would run them.
var fixtureArgs = []string{
	"--advertise-address=10.0.0.5",
	"--allow-privileged=true",
	"--authorization-mode=Node,RBAC",
	"--client-ca-file=/etc/kubernetes/pki/ca.crt",
	"--enable-admission-plugins=NodeRestriction",
	"--etcd-servers=https://127.0.0.1:2379",
	"--secure-port=6443",
	"--service-cluster-ip-range=10.96.0.0/12",
	"--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384",
}

// fakeProc is one process of a synthetic /proc tree.
type fakeProc struct {
	pid  int
	comm string
	argv []string
}

// writeProc lays out procDir/<pid>/{comm,cmdline} the way the kernel presents them: comm
// truncated to 15 bytes with a newline, cmdline NUL-terminated words.
func writeProc(t testing.TB, procDir string, procs ...fakeProc) {
	t.Helper()
	for _, p := range procs {
		dir := filepath.Join(procDir, strconv.Itoa(p.pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var cmdline bytes.Buffer
		for _, a := range p.argv {
			cmdline.WriteString(a)
			cmdline.WriteByte(0)
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(truncComm(p.comm)+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), cmdline.Bytes(), 0o444); err != nil {
			t.Fatal(err)
		}
	}
}

// copyTree copies a fixture directory so a test can edit it.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// golden compares got with testdata/inspect/<name>, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(testdataDir, name)
	golden.Check(t, path, got)
}

func argsOf(flags []Flag) string {
	var s []string
	for _, f := range flags {
		s = append(s, f.Arg())
	}
	return strings.Join(s, " ")
}

// loadModeFile reads kube-apiserver's options from mode's file under p, as show-apiserver-options
// does.
func loadModeFile(t *testing.T, m runmode.Mode, p paths.Paths, cat Catalog) (*Invocation, error) {
	t.Helper()
	src, ok := m.Source(p, Component)
	if !ok {
		t.Fatalf("mode %s has no file source", m.Name())
	}
	return LoadSource(src, cat)
}
