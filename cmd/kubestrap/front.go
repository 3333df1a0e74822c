//go:build front

// Command kubestrap, release shape: the CLI without the bundled control plane, carrying the
// component program (the monolith of main.go) embedded. Commands that run a component
// ("kubestrap kube-apiserver ...", a symlink named after one) execute that program, extracted
// once by content hash and verified before every run (package progstore); every other command
// starts without initialising the kube-apiserver, controller-manager, scheduler or etcd
// packages. Build it with hack/build.sh, which makes the payload this file embeds.
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/kubestrap/kubestrap/internal/cli"
	"github.com/kubestrap/kubestrap/internal/inspect"
	"github.com/kubestrap/kubestrap/internal/progstore"
	"github.com/kubestrap/kubestrap/internal/version"
)

func main() {
	m, err := payloadManifest()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: this kubestrap build is broken: %v; rebuild it with hack/build.sh\n", err)
		os.Exit(1)
	}
	if name, viaArgv0 := progstore.Component(os.Args, m.Components); name != "" {
		err := func() error {
			dir, err := progstore.DispatchDir(os.Getenv, os.Geteuid())
			if err != nil {
				return err
			}
			return progstore.ExecComponent(dir, os.Args, name, viaArgv0)
		}()
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
	version.SetBundled(m.Kubernetes, m.Etcd)
	cli.APIServerFlagCatalog = func() []inspect.FlagInfo {
		var flags []inspect.FlagInfo
		if err := json.Unmarshal(payloadFlags, &flags); err != nil {
			return nil // reported as "no catalog", never a wrong one
		}
		return flags
	}
	os.Exit(cli.Execute(cli.Args(os.Args), os.Stdin, os.Stdout, os.Stderr))
}

// payloadManifest decodes the embedded manifest and declares the embedded program to progstore.
func payloadManifest() (progstore.Manifest, error) {
	var m progstore.Manifest
	if err := json.Unmarshal(payloadManifestJSON, &m); err != nil {
		return m, fmt.Errorf("embedded manifest: %w", err)
	}
	sum, err := hex.DecodeString(m.SHA256)
	e := &progstore.Embedded{Data: payloadProgram, Components: m.Components}
	if err != nil || len(sum) != len(e.Sum) {
		return m, fmt.Errorf("embedded manifest: bad sha256 %q", m.SHA256)
	}
	copy(e.Sum[:], sum)
	progstore.SetEmbedded(e)
	return m, nil
}
