// Package config owns kubestrap's configuration: the kubeadm.k8s.io/v1beta4 documents an operator
// can bring from kubeadm (InitConfiguration, ClusterConfiguration, JoinConfiguration,
// ResetConfiguration) plus kubestrap's own kubestrap.io/v1alpha1 KubestrapConfiguration. It splits
// and strictly decodes config files, applies command-line overrides, fills in kubeadm's static
// defaults and the host-dependent dynamic ones (node name, advertise address), validates the result
// reporting every problem at once, and marshals configurations back to YAML. It reads files but never
// writes anything; the values other packages derive from a configuration live in derived.go so
// they cannot disagree.
package config
