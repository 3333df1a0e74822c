package config

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// Marshal renders c as the documents of a config file: InitConfiguration, ClusterConfiguration
// and KubestrapConfiguration, each with its apiVersion and kind, then the component configuration
// documents the configuration was loaded with, separated by "---". Keys come out sorted, as
// kubeadm prints them.
func Marshal(c *Config) ([]byte, error) {
	init, cluster, ks := c.Init, c.Cluster, c.Kubestrap
	init.APIVersion, init.Kind = KubeadmAPIVersion, KindInit
	cluster.APIVersion, cluster.Kind = KubeadmAPIVersion, KindCluster
	ks.APIVersion, ks.Kind = KubestrapAPIVersion, KindKubestrap
	docs := []any{&init, &cluster, &ks}
	for _, cc := range []json.RawMessage{c.KubeletConfiguration, c.KubeProxyConfiguration} {
		if len(cc) > 0 {
			docs = append(docs, cc)
		}
	}
	return marshalDocuments(docs...)
}

// MarshalCluster renders only the ClusterConfiguration document: what kubeadm stores in the
// kube-system/kubeadm-config ConfigMap (key ClusterConfiguration) for later joins and upgrades.
func MarshalCluster(c *Config) ([]byte, error) {
	cluster := c.Cluster
	cluster.APIVersion, cluster.Kind = KubeadmAPIVersion, KindCluster
	return marshalDocuments(&cluster)
}

// MarshalJoin renders a join configuration as JoinConfiguration --- KubestrapConfiguration.
func MarshalJoin(j *JoinConfig) ([]byte, error) {
	join, ks := j.Join, j.Kubestrap
	join.APIVersion, join.Kind = KubeadmAPIVersion, KindJoin
	ks.APIVersion, ks.Kind = KubestrapAPIVersion, KindKubestrap
	return marshalDocuments(&join, &ks)
}

// MarshalReset renders a ResetConfiguration document.
func MarshalReset(r *ResetConfiguration) ([]byte, error) {
	reset := *r
	reset.APIVersion, reset.Kind = KubeadmAPIVersion, KindReset
	return marshalDocuments(&reset)
}

func marshalDocuments(docs ...any) ([]byte, error) {
	var b bytes.Buffer
	for i, d := range docs {
		out, err := yaml.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("marshalling %T: %w", d, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(out)
	}
	return b.Bytes(), nil
}
