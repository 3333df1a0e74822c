//go:build !front

// Command kubestrap is a multi-call binary: invoked as kube-apiserver, kube-controller-manager,
// kube-scheduler or etcd (through a symlink, or as "kubestrap <component>") it runs that bundled
// upstream program; invoked as kubestrap-csr-approver it runs "kubestrap csr-approver"; otherwise
// it is the kubestrap CLI.
//
// This file is the monolith, what a plain `go build ./cmd/kubestrap` makes: everything linked in
// one program. The release build (hack/build.sh) embeds this same program in a small front
// (front.go, build tag "front") that runs the CLI without it and executes it for the components.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/kubestrap/kubestrap/internal/bundle"
	"github.com/kubestrap/kubestrap/internal/cli"
	"github.com/kubestrap/kubestrap/internal/progstore"
)

func main() {
	if name := filepath.Base(os.Args[0]); bundle.IsComponent(name) {
		os.Exit(bundle.Run(name, os.Args))
	}
	if len(os.Args) > 1 && bundle.IsComponent(os.Args[1]) {
		// "kubestrap kube-apiserver --flags": the component sees itself as argv[0], as it would
		// through its symlink.
		os.Exit(bundle.Run(os.Args[1], os.Args[1:]))
	}
	if len(os.Args) == 4 && os.Args[1] == payloadMetadataCommand {
		// Build step of the release shape (hack/build.sh), not a user command.
		if err := writePayloadMetadata(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			os.Exit(1)
		}
		return
	}
	progstore.SetMonolith(bundle.Names())
	// The bundled programs register flags such as --version on pflag's global set at package
	// initialisation; cobra would show them as kubestrap's own, so the CLI starts from a clean set.
	pflag.CommandLine = pflag.NewFlagSet(os.Args[0], pflag.ExitOnError)
	cli.APIServerFlagCatalog = bundle.APIServerFlags
	os.Exit(cli.Execute(cli.Args(os.Args), os.Stdin, os.Stdout, os.Stderr))
}
