package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/inspect"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
)

// These tests check, per command, that its flags land where the command's run reads them: they
// parse a command line with cobra exactly as execution does, then build the options struct or
// effective configuration from it, without running anything against a host or a cluster.

// parseArgs finds the (sub)command args name below cmd and parses the rest as its flags, including
// those inherited from its parents; it returns that command and its positional arguments.
func parseArgs(t *testing.T, cmd *cobra.Command, args ...string) (*cobra.Command, []string) {
	t.Helper()
	c, rest, err := cmd.Find(args)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if err := c.ParseFlags(rest); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	return c, c.Flags().Args()
}

// testGlobals are the global options of a command run under a fresh root dir as root.
func testGlobals(t *testing.T) *globalOptions {
	t.Helper()
	return &globalOptions{RootDir: t.TempDir(), In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
}

// writeFile writes a config file in a temporary directory and returns its path.
func writeFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubestrap.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInitFlagsToConfig(t *testing.T) {
	g := testGlobals(t)
	opts := &initOptions{}
	parseArgs(t, initCommand(g, opts),
		"--apiserver-advertise-address", "10.1.2.3", "--apiserver-bind-port", "7443",
		"--apiserver-cert-extra-sans", "api.example,10.9.9.9", "--control-plane-endpoint", "cp.example:7443",
		"--node-name", "cp-1", "--service-cidr", "10.100.0.0/16", "--pod-network-cidr", "10.244.0.0/16",
		"--service-dns-domain", "example.internal", "--cert-dir", "/srv/pki",
		"--encryption-algorithm", config.AlgorithmRSA2048, "--mode", "local",
		"--token", "abcdef.0123456789abcdef", "--dry-run", "--skip-token-print",
		"--ignore-preflight-errors", "Port-6443,Swap", "--skip-phases", "addon/kube-proxy")
	cfg, o, err := initSettings(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"advertiseAddress", cfg.Init.LocalAPIEndpoint.AdvertiseAddress, "10.1.2.3"},
		{"controlPlaneEndpoint", cfg.Cluster.ControlPlaneEndpoint, "cp.example:7443"},
		{"nodeRegistration.name", cfg.Init.NodeRegistration.Name, "cp-1"},
		{"serviceSubnet", cfg.Cluster.Networking.ServiceSubnet, "10.100.0.0/16"},
		{"podSubnet", cfg.Cluster.Networking.PodSubnet, "10.244.0.0/16"},
		{"dnsDomain", cfg.Cluster.Networking.DNSDomain, "example.internal"},
		{"certificatesDir", cfg.Cluster.CertificatesDir, "/srv/pki"},
		{"encryptionAlgorithm", cfg.Cluster.EncryptionAlgorithm, config.AlgorithmRSA2048},
		{"mode", cfg.Kubestrap.Mode, "local"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.Init.LocalAPIEndpoint.BindPort != 7443 {
		t.Errorf("bindPort = %d, want 7443", cfg.Init.LocalAPIEndpoint.BindPort)
	}
	if !slices.Equal(cfg.Cluster.APIServer.CertSANs, []string{"api.example", "10.9.9.9"}) {
		t.Errorf("certSANs = %v", cfg.Cluster.APIServer.CertSANs)
	}
	if len(cfg.Init.BootstrapTokens) != 1 || cfg.Init.BootstrapTokens[0].Token != "abcdef.0123456789abcdef" {
		t.Errorf("bootstrapTokens = %+v, want the --token one only", cfg.Init.BootstrapTokens)
	}
	if !o.DryRun || !o.SkipTokenPrint || !slices.Equal(o.IgnorePreflight, []string{"Port-6443", "Swap"}) {
		t.Errorf("options %+v: want dry run, skip token print and the two ignored checks", o)
	}
	if !slices.Equal(opts.skipPhases, []string{"addon/kube-proxy"}) {
		t.Errorf("skipPhases = %v", opts.skipPhases)
	}
}

func TestInitFlagsWinOverConfigFile(t *testing.T) {
	g := testGlobals(t)
	g.ConfigFile = writeFile(t, `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5, bindPort: 6444}
nodeRegistration: {name: from-file}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
networking: {podSubnet: 10.32.0.0/16}
`)
	opts := &initOptions{}
	parseArgs(t, initCommand(g, opts), "--node-name", "from-flag")
	cfg, o, err := initSettings(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Init.NodeRegistration.Name != "from-flag" {
		t.Errorf("node name %q: the flag must win over the file", cfg.Init.NodeRegistration.Name)
	}
	if cfg.Init.LocalAPIEndpoint.AdvertiseAddress != "10.0.0.5" || cfg.Init.LocalAPIEndpoint.BindPort != 6444 || cfg.Cluster.Networking.PodSubnet != "10.32.0.0/16" {
		t.Errorf("values only the file sets were lost: %+v %+v", cfg.Init.LocalAPIEndpoint, cfg.Cluster.Networking)
	}
	if o.DryRun || o.SkipTokenPrint {
		t.Errorf("options %+v without the flags", o)
	}

	// --certificate-key lands in InitConfiguration.certificateKey (over the file's) and is
	// validated there; --upload-certs and --skip-certificate-key-print are run options.
	const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	opts = &initOptions{}
	parseArgs(t, initCommand(g, opts), "--upload-certs", "--certificate-key", key, "--skip-certificate-key-print")
	cfg, o, err = initSettings(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Init.CertificateKey != key || !o.UploadCerts || o.CertificateKey != key || !o.SkipCertificateKeyPrint {
		t.Errorf("certificate key %q, options %+v", cfg.Init.CertificateKey, o)
	}
	opts = &initOptions{}
	parseArgs(t, initCommand(g, opts), "--certificate-key", "abc")
	if _, _, err := initSettings(g, opts); err == nil || !strings.Contains(err.Error(), "certificateKey") || !strings.Contains(err.Error(), "64 hex digits") {
		t.Errorf("a malformed key: %v", err)
	}
}

func TestJoinFlagsToOptions(t *testing.T) {
	const hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	g := testGlobals(t)
	opts := &joinOptions{}
	_, args := parseArgs(t, joinCommand(g, opts), "10.0.0.1:6443",
		"--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", hash,
		"--node-name", "worker-1", "--dry-run", "--ignore-preflight-errors", "all", "--skip-phases", "preflight")
	o, err := joinSettings(g, opts, args)
	if err != nil {
		t.Fatal(err)
	}
	d := o.Config.Join.Discovery
	if d.BootstrapToken == nil || d.BootstrapToken.APIServerEndpoint != "10.0.0.1:6443" || d.BootstrapToken.Token != "abcdef.0123456789abcdef" ||
		!slices.Equal(d.BootstrapToken.CACertHashes, []string{hash}) {
		t.Fatalf("token discovery %+v: want the endpoint argument, --token and the hash", d.BootstrapToken)
	}
	if d.TLSBootstrapToken != "abcdef.0123456789abcdef" {
		t.Errorf("tlsBootstrapToken %q: --token stands for it too", d.TLSBootstrapToken)
	}
	if o.Config.Join.NodeRegistration.Name != "worker-1" || !o.DryRun || !slices.Equal(o.IgnorePreflightErrors, []string{"all"}) {
		t.Errorf("node %q, dry run %v, ignored %v", o.Config.Join.NodeRegistration.Name, o.DryRun, o.IgnorePreflightErrors)
	}
	if o.Paths.Root() != g.RootDir {
		t.Errorf("root %q, want --root-dir %q", o.Paths.Root(), g.RootDir)
	}
	if !slices.Equal(opts.skipPhases, []string{"preflight"}) {
		t.Errorf("skipPhases = %v", opts.skipPhases)
	}

	// kubeadm's control-plane flags make a control-plane join; a certificate key alone makes one
	// too (kubeadm's file form has no separate switch), and is then required by validation.
	const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	opts = &joinOptions{}
	_, args = parseArgs(t, joinCommand(g, opts), "10.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", hash,
		"--control-plane", "--certificate-key", key, "--apiserver-advertise-address", "10.0.0.5", "--apiserver-bind-port", "7443")
	o, err = joinSettings(g, opts, args)
	if err != nil {
		t.Fatal(err)
	}
	cp := o.Config.Join.ControlPlane
	if cp == nil || cp.CertificateKey != key || cp.LocalAPIEndpoint.AdvertiseAddress != "10.0.0.5" || cp.LocalAPIEndpoint.BindPort != 7443 {
		t.Errorf("controlPlane %+v: want the certificate key, advertise address and bind port of the flags", cp)
	}
	opts = &joinOptions{}
	_, args = parseArgs(t, joinCommand(g, opts), "10.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", hash, "--control-plane")
	if _, err := joinSettings(g, opts, args); err == nil || !strings.Contains(err.Error(), "controlPlane.certificateKey: Required value: "+config.NoCertificateKey) {
		t.Errorf("--control-plane without --certificate-key: err %v, want the certificate key required", err)
	}
}

func TestResetFlagsToOptions(t *testing.T) {
	file := writeFile(t, `apiVersion: kubeadm.k8s.io/v1beta4
kind: ResetConfiguration
certificatesDir: /srv/file-pki
force: true
cleanupTmpDir: true
skipPhases: [remove-etcd-member]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
etcd:
  local: {dataDir: /srv/etcd}
`)
	for _, tc := range []struct {
		name     string
		config   string
		args     []string
		certDir  string
		force    bool
		dryRun   bool
		tmpDir   bool
		ignored  []string
		dataDir  string
		fromFile []string
	}{
		{"flags only", "", []string{"--cert-dir", "/srv/pki", "-f", "--dry-run", "--cleanup-tmp-dir", "--ignore-preflight-errors", "KubeletMounts"},
			"/srv/pki", true, true, true, []string{"KubeletMounts"}, "", nil},
		{"file only", file, nil, "/srv/file-pki", true, false, true, nil, "/srv/etcd", []string{"remove-etcd-member"}},
		{"flags win over the file", file, []string{"--cert-dir", "/srv/pki", "--force=false", "--cleanup-tmp-dir=false"},
			"/srv/pki", false, false, false, nil, "/srv/etcd", []string{"remove-etcd-member"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testGlobals(t)
			g.ConfigFile = tc.config
			opts := &resetOptions{}
			c, _ := parseArgs(t, resetCommand(g, opts), tc.args...)
			o, skip, err := resetSettings(g, opts, c.Flags())
			if err != nil {
				t.Fatal(err)
			}
			if o.CertificatesDir != tc.certDir || o.Force != tc.force || o.DryRun != tc.dryRun || o.CleanupTmpDir != tc.tmpDir ||
				!slices.Equal(o.IgnorePreflightErrors, tc.ignored) || o.EtcdDataDir != tc.dataDir {
				t.Errorf("options: certDir %q force %v dryRun %v cleanupTmpDir %v ignored %v etcd %q; want %q %v %v %v %v %q",
					o.CertificatesDir, o.Force, o.DryRun, o.CleanupTmpDir, o.IgnorePreflightErrors, o.EtcdDataDir,
					tc.certDir, tc.force, tc.dryRun, tc.tmpDir, tc.ignored, tc.dataDir)
			}
			if !slices.Equal(skip, tc.fromFile) {
				t.Errorf("skipPhases from the file = %v, want %v", skip, tc.fromFile)
			}
		})
	}
}

func TestTokenFlagsToOptions(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		args       []string
		kubeconfig string // "" = admin.conf under the root
		dryRun     bool
		ttl        time.Duration
		usages     []string
		groups     []string
		desc       string
		print      bool
	}{
		{"defaults", []string{"create"}, "", false, bootstrap.DefaultTokenTTL, bootstrap.DefaultTokenUsages, bootstrap.DefaultTokenGroups, "", false},
		{"every flag", []string{"create", "abcdef.0123456789abcdef", "--kubeconfig", "/k.conf", "--dry-run", "--ttl", "2h",
			"--usages", "signing,authentication", "--groups", "system:bootstrappers:extra", "--description", "ci", "--print-join-command"},
			"/k.conf", true, 2 * time.Hour, []string{"signing", "authentication"}, []string{"system:bootstrappers:extra"}, "ci", true},
		// The default group is dropped, not refused, for a token that does not authenticate.
		{"signing only", []string{"create", "--usages", "signing"}, "", false, bootstrap.DefaultTokenTTL, []string{"signing"}, nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testGlobals(t)
			opts, co := &tokenOptions{}, &tokenCreateOptions{}
			c, args := parseArgs(t, tokenCommand(g, opts, co), tc.args...)
			tok, err := co.newToken(args, c.Flags().Changed("groups"), now)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.kubeconfig
			if want == "" {
				want = filepath.Join(g.RootDir, "etc/kubernetes/admin.conf")
			}
			if path, err := opts.kubeconfigPath(g); err != nil || path != want {
				t.Errorf("kubeconfig %q (%v), want %q", path, err, want)
			}
			if opts.dryRun != tc.dryRun || co.printJoinCommand != tc.print {
				t.Errorf("dry run %v, print join command %v", opts.dryRun, co.printJoinCommand)
			}
			if len(args) > 0 && tok.String() != args[0] {
				t.Errorf("token %s, want the argument %s", tok.String(), args[0])
			}
			if !slices.Equal(tok.Usages, tc.usages) || !slices.Equal(tok.Groups, tc.groups) || tok.Description != tc.desc {
				t.Errorf("usages %v groups %v description %q; want %v %v %q", tok.Usages, tok.Groups, tok.Description, tc.usages, tc.groups, tc.desc)
			}
			if !tok.Expires.Equal(now.Add(tc.ttl)) {
				t.Errorf("expires %v, want %v", tok.Expires, now.Add(tc.ttl))
			}
		})
	}

	// A malformed token argument is a usage error, found before anything is contacted.
	g := testGlobals(t)
	co := &tokenCreateOptions{}
	c, args := parseArgs(t, tokenCommand(g, &tokenOptions{}, co), "create", "not-a-token")
	if _, err := co.newToken(args, c.Flags().Changed("groups"), now); !IsUsageError(err) {
		t.Errorf("malformed token: err %v, want a usage error", err)
	}
}

func TestCertsFlagsToConfig(t *testing.T) {
	noCluster := func(string, time.Duration) (kubeclient.Interface, error) {
		return kubeclienttest.Wrap(fake.NewClientset()), nil
	}
	file := writeFile(t, "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificatesDir: /srv/file-pki\n")
	for _, tc := range []struct {
		name, config string
		args         []string
		want         string
	}{
		{"defaults", "", nil, "/etc/kubernetes/pki"},
		{"--cert-dir", "", []string{"--cert-dir", "/srv/pki"}, "/srv/pki"},
		{"--config", file, nil, "/srv/file-pki"},
		{"--cert-dir wins over --config", file, []string{"--cert-dir", "/srv/pki"}, "/srv/pki"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// check-expiration and renew both register and read their flags through certsOptions.
			g := testGlobals(t)
			g.ConfigFile, g.newClusterClient = tc.config, noCluster
			var o certsOptions
			cmd := &cobra.Command{Use: "certs-subcommand"}
			o.addFlags(cmd)
			parseArgs(t, cmd, tc.args...)
			_, cfg, err := o.load(context.Background(), g)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Cluster.CertificatesDir != tc.want {
				t.Errorf("certificatesDir %q, want %q", cfg.Cluster.CertificatesDir, tc.want)
			}
		})
	}
}

func TestKubeconfigUserFlagsToOptions(t *testing.T) {
	g := testGlobals(t)
	o := &kubeconfigUserOptions{}
	if c, _ := parseArgs(t, newKubeconfigCommand(g), "user"); c.Name() != "user" {
		t.Fatalf("kubeconfig user resolves to %q", c.Name())
	}
	parseArgs(t, kubeconfigUserCommand(g, o), "--client-name", "jane", "--org", "devs,ops", "--org", "qa",
		"--validity-period", "720h", "--cert-dir", "/srv/pki", "--token", "t0k3n")
	want := kubeconfigUserOptions{clientName: "jane", orgs: []string{"devs", "ops", "qa"}, token: "t0k3n", validity: 720 * time.Hour, certDir: "/srv/pki"}
	if o.clientName != want.clientName || !slices.Equal(o.orgs, want.orgs) || o.token != want.token || o.validity != want.validity || o.certDir != want.certDir {
		t.Errorf("options %+v, want %+v", *o, want)
	}
	if err := o.validate(); err != nil {
		t.Errorf("valid flags refused: %v", err)
	}
	for _, bad := range [][]string{{"--org", "devs"}, {"--client-name", "jane", "--validity-period", "-1h"}} {
		o := &kubeconfigUserOptions{}
		parseArgs(t, kubeconfigUserCommand(g, o), bad...)
		if err := o.validate(); !IsUsageError(err) {
			t.Errorf("%v: err %v, want a usage error", bad, err)
		}
	}
}

func TestShowAPIServerOptionsFlagsToOptions(t *testing.T) {
	g := testGlobals(t)
	o := &showAPIServerOptions{}
	_, args := parseArgs(t, showAPIServerOptionsCommand(g, o), "--source", "flagz", "--pid", "42", "--kubeconfig", "/k.conf",
		"-o", "json", "--all", "--diff", "--explain", "secure-port", "etcd-servers", "--proc-dir", "/tmp/proc")
	iopts, err := inspectOptions(g, o, args)
	if err != nil {
		t.Fatal(err)
	}
	if iopts.Source != string(inspect.SourceFlagz) || iopts.PID != 42 || iopts.Kubeconfig != "/k.conf" || iopts.Output != "json" || !iopts.All || !iopts.Diff ||
		iopts.ProcDir != "/tmp/proc" || !slices.Equal(iopts.Explain, []string{"secure-port", "etcd-servers"}) || iopts.Paths.Root() != g.RootDir {
		t.Errorf("inspect options %+v", iopts)
	}

	o = &showAPIServerOptions{}
	_, args = parseArgs(t, showAPIServerOptionsCommand(g, o))
	if iopts, err = inspectOptions(g, o, args); err != nil {
		t.Fatal(err)
	}
	if iopts.Source != string(inspect.SourceAuto) || iopts.Output != inspect.OutputTable || iopts.ProcDir != "/proc" || iopts.Explain != nil || iopts.All || iopts.Diff {
		t.Errorf("default inspect options %+v", iopts)
	}
}

func TestStatusFlagsToOptions(t *testing.T) {
	g := testGlobals(t)
	for _, tc := range []struct {
		args    []string
		want    string
		wantErr bool
	}{
		{nil, "table", false},
		{[]string{"-o", "json"}, "json", false},
		{[]string{"--output", "xml"}, "xml", true},
	} {
		o := &statusOptions{}
		parseArgs(t, statusCommand(g, o), tc.args...)
		if o.Output != tc.want {
			t.Errorf("%v: output %q, want %q", tc.args, o.Output, tc.want)
		}
		if err := o.validate(); (err != nil) != tc.wantErr || (err != nil && !IsUsageError(err)) {
			t.Errorf("%v: validate %v, want a usage error: %v", tc.args, err, tc.wantErr)
		}
	}
}
