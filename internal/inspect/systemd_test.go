package inspect

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

func TestLoadSystemdSource(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(filepath.Join(testdataDir, "root"))
	inv, err := loadModeFile(t, runmode.Systemd{}, p, fakeCatalog)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != "systemd" || inv.Binary != "/usr/local/bin/kube-apiserver" || inv.Label() != "unit" {
		t.Errorf("source %q binary %q label %q", inv.Source, inv.Binary, inv.Label())
	}
	type fo struct{ arg, origin string }
	var got []fo
	for _, f := range inv.Flags {
		got = append(got, fo{f.Arg(), f.Origin})
	}
	// The drop-in's ExecStart= replaced the unit's; ${ADVERTISE} comes from the drop-in's
	// Environment= (overriding the unit's), ${ETCD_SERVERS} likewise, and $EXTRA_ARGS is split
	// from the environment file.
	want := []fo{
		{"--advertise-address=10.0.0.5", "unit drop-in 20-env.conf"},
		{"--allow-privileged", "unit drop-in 10-flags.conf"},
		{"--authorization-mode=Node,RBAC", "unit drop-in 10-flags.conf"},
		{"--client-ca-file=/etc/kubernetes/pki/ca.crt", "unit drop-in 10-flags.conf"},
		{"--enable-admission-plugins=NodeRestriction", "unit drop-in 10-flags.conf"},
		{"--etcd-servers=https://127.0.0.1:2379", "unit drop-in 20-env.conf"},
		{"--secure-port=6443", "unit EnvironmentFile /etc/default/kube-apiserver"},
		{"--service-cluster-ip-range=10.96.0.0/12", "unit drop-in 10-flags.conf"},
		{"--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384", "unit drop-in 10-flags.conf"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flags\n got %v\nwant %v", got, want)
	}
}

// writeUnit lays out a unit and drop-ins (name -> content; "" names the unit) under a new root.
func writeUnit(t *testing.T, files map[string]string) paths.Paths {
	t.Helper()
	p := paths.MustUnder(t.TempDir())
	for name, content := range files {
		path := p.SystemdUnit(UnitName)
		if name != "" {
			path = p.Host(name)
			if !strings.HasPrefix(name, "/") {
				path = filepath.Join(p.SystemdUnit(UnitName+".d"), name)
			}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestLoadSystemdSourceCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		files    map[string]string
		wantBin  string
		wantArgs string
		wantErr  string
	}{
		{
			name:     "unit alone, line continuations",
			files:    map[string]string{"": "[Service]\nExecStart=/bin/kube-apiserver \\\n  --a=1 \\\n  --b 2\n"},
			wantBin:  "/bin/kube-apiserver",
			wantArgs: "--a=1 --b=2",
		},
		{
			name:    "a drop-in adding a second ExecStart without clearing",
			files:   map[string]string{"": "[Service]\nExecStart=/bin/kube-apiserver --a=1\n", "50-x.conf": "[Service]\nExecStart=/bin/kube-apiserver --a=2\n"},
			wantErr: "2 ExecStart= lines (from unit, unit drop-in 50-x.conf)",
		},
		{
			name:    "no ExecStart",
			files:   map[string]string{"": "[Service]\nRestart=always\n"},
			wantErr: "no ExecStart=",
		},
		{
			name: "drop-ins apply in file-name order",
			files: map[string]string{
				"":          "[Service]\nExecStart=/bin/kube-apiserver --a=${A}\n",
				"20-b.conf": "[Service]\nEnvironment=A=late\n",
				"10-a.conf": "[Service]\nEnvironment=A=early\n",
			},
			wantBin:  "/bin/kube-apiserver",
			wantArgs: "--a=late",
		},
		{
			name: "Environment= reset, prefixes, quoting, $$, specifiers, undefined variables",
			files: map[string]string{"": `[Service]
Environment=A=dropped
Environment=
Environment="B=two words" C=--c=3
ExecStart=-@/usr/bin/kubestrap kubestrap kube-apiserver "--b=${B}" $C --price=$$5 --unit=%n --pct=%% --u=${UNDEFINED} $UNDEFINED --lit=$B '--q=a b' --esc=x\sy --a=${A}
`},
			wantBin:  "/usr/bin/kubestrap kube-apiserver",
			wantArgs: "--b=two words --c=3 --price=$5 --unit=kube-apiserver.service --pct=% --u= --lit=$B --q=a b --esc=x y --a=",
		},
		{
			name:     "colon prefix turns substitution off",
			files:    map[string]string{"": "[Service]\nEnvironment=A=1\nExecStart=:/bin/kube-apiserver --a=${A}\n"},
			wantBin:  "/bin/kube-apiserver",
			wantArgs: "--a=${A}",
		},
		{
			name: "EnvironmentFile overrides Environment=, later files win, - tolerates a missing file",
			files: map[string]string{
				"":                 "[Service]\nEnvironment=A=env B=env\nEnvironmentFile=/etc/a\nEnvironmentFile=-/etc/missing\nEnvironmentFile=/etc/b\nExecStart=/bin/kube-apiserver --a=${A} --b=${B} $ARGS\n",
				"/etc/a":           "A=file-a\n# comment\n; comment\nB='file a'\n",
				"/etc/b":           "B=\"file \\\"b\\\"\"\nARGS=--x=1 \\\n --y=2\nnot an assignment\n",
				"/etc/unused-file": "",
			},
			wantBin:  "/bin/kube-apiserver",
			wantArgs: `--a=file-a --b=file "b" --x=1 --y=2`,
		},
		{
			name:    "missing EnvironmentFile without - is an error",
			files:   map[string]string{"": "[Service]\nEnvironmentFile=/etc/nope\nExecStart=/bin/kube-apiserver\n"},
			wantErr: "EnvironmentFile=/etc/nope (unit)",
		},
		{
			name:    "unbalanced quote",
			files:   map[string]string{"": "[Service]\nExecStart=/bin/kube-apiserver \"--a=1\n"},
			wantErr: "unbalanced quote",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := writeUnit(t, tt.files)
			inv, err := loadModeFile(t, runmode.Systemd{}, p, fakeCatalog)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inv.Binary != tt.wantBin || argsOf(inv.Flags) != tt.wantArgs {
				t.Errorf("binary %q args %q\nwant binary %q args %q", inv.Binary, argsOf(inv.Flags), tt.wantBin, tt.wantArgs)
			}
		})
	}
	_, err := loadModeFile(t, runmode.Systemd{}, paths.MustUnder(t.TempDir()), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing unit: %v, want ErrNotExist", err)
	}
}
