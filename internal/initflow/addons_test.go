package initflow

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/testfixture"
)

type fixedHost struct{}

func (fixedHost) Hostname() (string, error)    { return "cp-1", nil }
func (fixedHost) DefaultIPv4() (net.IP, error) { return net.ParseIP("10.0.0.10"), nil }

// defaulted is the test configuration after init's dynamic defaults (the control-plane taint).
func defaulted(t *testing.T) *config.Config {
	t.Helper()
	cfg := configtest.Init("10.0.0.10", "cp-1")
	if errs := config.ApplyDynamicDefaults(cfg, fixedHost{}); len(errs) > 0 {
		t.Fatal(errs)
	}
	return cfg
}

func phaseLines(log, prefix string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// A whole init in local mode has no control-plane Node: one line says so, nothing fails.
func TestMarkControlPlaneLocalMode(t *testing.T) {
	t.Parallel()
	res := runInit(t, configtest.Init("10.0.0.10", "cp-1"), config.ModeLocal, true, []string{"mark-control-plane"}, nil, nil)
	if res.err != nil {
		t.Fatal(res.err)
	}
	lines := phaseLines(res.log.String(), "[mark-control-plane]")
	if len(lines) != 1 || !strings.Contains(lines[0], "runs no kubelet") {
		t.Errorf("want one line saying local mode has no kubelet, got:\n%s", res.log.String())
	}
}

// The phase prints kubeadm's lines (testdata/kubeadm/mark-control-plane-dry-run.txt, same node
// and default taint).
func TestMarkControlPlaneMessagesAsKubeadm(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(testfixture.KubeadmDir(), "mark-control-plane-dry-run.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := phaseLines(string(b), "[mark-control-plane]")
	if len(want) != 2 {
		t.Fatalf("kubeadm's output has %d [mark-control-plane] lines, want 2", len(want))
	}
	res := runInit(t, defaulted(t), config.ModeStaticPod, true, []string{"mark-control-plane"}, nil, nil)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := phaseLines(res.log.String(), "[mark-control-plane]"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant kubeadm's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// "init phase mark-control-plane" marks a registered Node even in local mode: an operator who
// started a kubelet under the control plane's name asks for it.
func TestMarkControlPlanePhaseAlone(t *testing.T) {
	t.Parallel()
	cfg := defaulted(t)
	fakeC := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-1"}})
	c := kubeclienttest.Wrap(fakeC)
	var log bytes.Buffer
	d, err := New(cfg, paths.MustUnder(t.TempDir()), config.ModeLocal, Options{Out: &bytes.Buffer{}, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	d.client = c
	r := NewRunner()
	r.Log = &log
	cmd := &cobra.Command{Use: "init", SilenceErrors: true, SilenceUsage: true}
	cmd.AddCommand(r.PhaseCommands(func(*cobra.Command, []string) (*Data, error) { return d, nil }, nil))
	cmd.SetArgs([]string{"phase", "mark-control-plane"})
	cmd.SetOut(&bytes.Buffer{})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	n, err := c.CoreV1().Nodes().Get(context.Background(), "cp-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Labels[bootstrap.LabelControlPlane]; !ok || len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != config.ControlPlaneTaintKey {
		t.Errorf("node not marked: labels %v taints %v\n%s", n.Labels, n.Spec.Taints, log.String())
	}
}

// dns.disabled and proxy.disabled leave their addon out, with a note, whether the addon phase
// runs in a whole init or alone.
func TestDisabledAddons(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		set           func(*config.Config)
		phase         []string
		want, notWant string
	}{
		{"dns disabled, whole run", func(c *config.Config) { c.Cluster.DNS.Disabled = true }, nil, "name: kube-proxy", "name: coredns"},
		{"proxy disabled, whole run", func(c *config.Config) { c.Cluster.Proxy.Disabled = true }, nil, "name: coredns", "name: kube-proxy"},
		{"dns disabled, phase alone", func(c *config.Config) { c.Cluster.DNS.Disabled = true }, []string{"addon", "coredns"}, "dns.disabled: true", "name: coredns"},
		{"proxy disabled, addon all", func(c *config.Config) { c.Cluster.Proxy.Disabled = true }, []string{"addon", "all"}, "proxy.disabled: true", "name: kube-proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configtest.Init("10.0.0.10", "cp-1")
			tc.set(cfg)
			res := runInit(t, cfg, config.ModeLocal, true, []string{"addon"}, nil, tc.phase)
			if res.err != nil {
				t.Fatal(res.err)
			}
			if log := res.log.String(); !strings.Contains(log, tc.want) || strings.Contains(log, tc.notWant) {
				t.Errorf("want %q and no %q in:\n%s", tc.want, tc.notWant, log)
			}
		})
	}
}
