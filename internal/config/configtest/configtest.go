// Package configtest gives tests of every package one defaulted, valid init configuration, so
// that a new field's default reaches all of them at once. Only tests import it.
package configtest

import (
	"fmt"

	"github.com/kubestrap/kubestrap/internal/config"
)

// Init returns kubeadm's defaults as kubestrap applies them (config.DefaultInit) for a node named
// name that advertises address. It panics if that is not a valid configuration: a broken fixture
// is a bug in the tests, and benchmarks and table builders have no *testing.T to fail.
func Init(address, name string) *config.Config {
	cfg := config.DefaultInit()
	cfg.Init.LocalAPIEndpoint.AdvertiseAddress = address
	cfg.Init.NodeRegistration.Name = name
	if err := config.Validate(cfg); err != nil {
		panic(fmt.Sprintf("configtest: the test configuration is not valid: %v", err))
	}
	return cfg
}
