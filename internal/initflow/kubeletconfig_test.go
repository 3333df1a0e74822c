package initflow

import (
	"bytes"
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubeclient/kubeclienttest"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// The KubeletConfiguration document of init's config file reaches the kubelet-config ConfigMap
// that joining nodes read, merged over kubestrap's defaults.
func TestUploadedKubeletConfigHasUserFields(t *testing.T) {
	t.Parallel()
	file := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\nnodeRegistration:\n  name: n1\n" +
		"---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 42\ncgroupDriver: cgroupfs\n"
	cfg, err := config.LoadInitData("kubestrap.yaml", []byte(file), config.Overrides{}, config.SystemHost{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, paths.MustUnder(t.TempDir()), config.ModeLocal, Options{Out: &bytes.Buffer{}, Log: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	fakeClient := fake.NewClientset()
	client := kubeclienttest.Wrap(fakeClient)
	d.client = client
	if err := runUploadKubeletConfig(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	cm, err := client.CoreV1().ConfigMaps("kube-system").Get(context.Background(), bootstrap.KubeletConfigConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := cm.Data[bootstrap.KubeletConfigKey]
	for _, want := range []string{"maxPods: 42\n", "cgroupDriver: cgroupfs\n", "healthzBindAddress: 127.0.0.1\n", "clusterDNS:\n- 10.96.0.10\n"} {
		if !strings.Contains(data, want) {
			t.Errorf("ConfigMap kube-system/%s lacks %q:\n%s", bootstrap.KubeletConfigConfigMap, want, data)
		}
	}
}
