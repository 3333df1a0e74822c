package pki

import (
	"os"
	"testing"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// BenchmarkPKI measures a full PKI (3 CAs, 7 leaves, sa: 22 files written and fsynced) into a
// fresh directory, generated concurrently and, as the baseline of the same run, one key after
// another.
func BenchmarkPKI(b *testing.B) {
	for _, alg := range []string{config.AlgorithmECDSAP256, config.AlgorithmRSA2048} {
		b.Run(alg, func(b *testing.B) {
			for _, mode := range []struct {
				name   string
				serial bool
			}{{"parallel", false}, {"serial", true}} {
				b.Run(mode.name, func(b *testing.B) {
					cfg := testConfig()
					cfg.Cluster.EncryptionAlgorithm = alg
					base := b.TempDir()
					b.ReportAllocs()
					for b.Loop() {
						root, err := os.MkdirTemp(base, "root")
						if err != nil {
							b.Fatal(err)
						}
						if err := EnsureCerts(cfg, paths.MustUnder(root), nil, Options{Serial: mode.serial}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
