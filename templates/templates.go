// Package templates holds the text templates kubestrap renders into files that are not
// Kubernetes objects — systemd units for the control-plane components and the kubelet, and the
// kubelet's drop-in — embedded into the binary so that a host needs nothing but kubestrap.
// Kubernetes objects (Pods, KubeletConfiguration) are never templated; they are typed structs.
package templates

import "embed"

// FS holds every *.tmpl file of this directory, by file name.
//
//go:embed *.tmpl
var FS embed.FS
