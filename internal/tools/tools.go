//go:build tools

// Package tools pins modules that kubestrap's packages and tests build from but that a plain
// `go mod tidy` would otherwise drop while the code using them is being written: kubemark (the
// hollow kubelet the e2e tests run) and the libraries named in the design.
package tools

import (
	_ "github.com/coreos/go-systemd/v22/dbus"
	_ "github.com/coreos/go-systemd/v22/unit"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "go.etcd.io/etcd/client/v3"
	_ "k8s.io/cluster-bootstrap/token/jws"
	_ "k8s.io/kubelet/config/v1beta1"
	_ "k8s.io/kubernetes/cmd/kubemark/app"
	_ "sigs.k8s.io/yaml"
)
