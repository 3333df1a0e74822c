package bootstrap

import "fmt"

// JoinCommand is the one-line `kubestrap join` command that init prints and `token create
// --print-join-command` prints: the control plane's host:port, the bootstrap token, and the
// cluster CA pinned by its public-key hash ("sha256:<hex>", pki.PublicKeyPin). Keeping a single
// builder keeps the two lines the same flags in the same order.
func JoinCommand(endpoint, token, caCertHash string) string {
	return fmt.Sprintf("kubestrap join %s --token %s --discovery-token-ca-cert-hash %s", endpoint, token, caCertHash)
}

// ControlPlaneJoinCommand is JoinCommand for a node that joins as a control plane: the same line
// with --control-plane and the certificate key that decrypts the uploaded shared certificates.
func ControlPlaneJoinCommand(endpoint, token, caCertHash, certificateKey string) string {
	return JoinCommand(endpoint, token, caCertHash) + " --control-plane --certificate-key " + certificateKey
}
