package inspect

import (
	"reflect"
	"testing"
)

// nv is a flag's name, value and bareness, the part of Flag these tests care about.
type nv struct {
	name, value string
	bare        bool
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		cat       Catalog
		want      []nv
		wantExtra []string
		// wantArgs is the -o args rendering, one token per flag.
		wantArgs string
	}{
		{
			name:     "equals form",
			args:     []string{"--secure-port=6443"},
			want:     []nv{{"secure-port", "6443", false}},
			wantArgs: "--secure-port=6443",
		},
		{
			name:     "separate value",
			args:     []string{"--secure-port", "6443", "--etcd-servers", "https://a:2379"},
			want:     []nv{{"secure-port", "6443", false}, {"etcd-servers", "https://a:2379", false}},
			wantArgs: "--secure-port=6443 --etcd-servers=https://a:2379",
		},
		{
			name:     "bare boolean followed by a flag",
			args:     []string{"--allow-privileged", "--secure-port=1"},
			want:     []nv{{"allow-privileged", "true", true}, {"secure-port", "1", false}},
			wantArgs: "--allow-privileged --secure-port=1",
		},
		{
			name:     "bare boolean last",
			args:     []string{"--secure-port=1", "--allow-privileged"},
			want:     []nv{{"secure-port", "1", false}, {"allow-privileged", "true", true}},
			wantArgs: "--secure-port=1 --allow-privileged",
		},
		{
			name:      "catalog bool does not take the next word",
			args:      []string{"--allow-privileged", "true"},
			cat:       fakeCatalog,
			want:      []nv{{"allow-privileged", "true", true}},
			wantExtra: []string{"true"},
			wantArgs:  "--allow-privileged",
		},
		{
			name:     "without catalog a non-dash word is the value",
			args:     []string{"--allow-privileged", "true"},
			want:     []nv{{"allow-privileged", "true", false}},
			wantArgs: "--allow-privileged=true",
		},
		{
			name:     "catalog non-bool takes the next word even with a dash, like pflag",
			args:     []string{"--max-requests-inflight", "-1"},
			cat:      fakeCatalog,
			want:     []nv{{"max-requests-inflight", "-1", false}},
			wantArgs: "--max-requests-inflight=-1",
		},
		{
			name:     "repeated flag kept each time, in order",
			args:     []string{"--v=2", "--secure-port=1", "--v=4"},
			want:     []nv{{"v", "2", false}, {"secure-port", "1", false}, {"v", "4", false}},
			wantArgs: "--v=2 --secure-port=1 --v=4",
		},
		{
			name:     "value containing equals, commas and spaces",
			args:     []string{"--feature-gates=A=true,B=false", "--service-account-issuer", "https://k/x y", "--api-audiences=a,b"},
			want:     []nv{{"feature-gates", "A=true,B=false", false}, {"service-account-issuer", "https://k/x y", false}, {"api-audiences", "a,b", false}},
			wantArgs: "--feature-gates=A=true,B=false --service-account-issuer=https://k/x y --api-audiences=a,b",
		},
		{
			name:     "empty value",
			args:     []string{"--audit-log-path=", "--token-auth-file", ""},
			want:     []nv{{"audit-log-path", "", false}, {"token-auth-file", "", false}},
			wantArgs: "--audit-log-path= --token-auth-file=",
		},
		{
			name:     "single dash shorthand keeps its spelling",
			args:     []string{"-v=3", "-v", "5"},
			cat:      fakeCatalog,
			want:     []nv{{"v", "3", false}, {"v", "5", false}},
			wantArgs: "-v=3 -v=5",
		},
		{
			name:     "underscore spelling is normalised but rendered as written",
			args:     []string{"--secure_port=6443"},
			cat:      fakeCatalog,
			want:     []nv{{"secure-port", "6443", false}},
			wantArgs: "--secure_port=6443",
		},
		{
			name:      "words that are not flags, and everything after --",
			args:      []string{"stray", "--secure-port=1", "-", "--", "--not-a-flag"},
			want:      []nv{{"secure-port", "1", false}},
			wantExtra: []string{"stray", "-", "--not-a-flag"},
			wantArgs:  "--secure-port=1",
		},
		{
			name: "nothing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			flags, extra := ParseArgs(tt.args, tt.cat, "process 1")
			var got []nv
			for _, f := range flags {
				got = append(got, nv{f.Name, f.Value, f.Bare})
				if f.Origin != "process 1" || !f.Explicit {
					t.Errorf("%s: origin %q explicit %v, want process 1 and explicit", f.Name, f.Origin, f.Explicit)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("flags = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(extra, tt.wantExtra) {
				t.Errorf("extra = %q, want %q", extra, tt.wantExtra)
			}
			if a := argsOf(flags); a != tt.wantArgs {
				t.Errorf("args = %q, want %q", a, tt.wantArgs)
			}
		})
	}
}

func TestCatalogLookup(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"secure-port", "--secure-port", "secure_port"} {
		if _, ok := fakeCatalog.Lookup(name); !ok {
			t.Errorf("Lookup(%q) found nothing", name)
		}
	}
	if NewCatalog(nil) != nil {
		t.Error("NewCatalog(nil) should be nil: no catalog")
	}
}
