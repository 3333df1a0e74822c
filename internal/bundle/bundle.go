// Package bundle owns the upstream control-plane programs compiled into kubestrap: kube-apiserver,
// kube-controller-manager and kube-scheduler from k8s.io/kubernetes, and etcd from etcdmain. It is the
// only package that imports them, so every other package builds and tests without their weight.
package bundle

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func RunAPIServer() int { return cli.Run(apiserver.NewAPIServerCommand()) }
func RunKCM() int       { return cli.Run(kcm.NewControllerManagerCommand()) }
func RunScheduler() int { return cli.Run(scheduler.NewSchedulerCommand()) }
func RunEtcd() int      { etcdmain.Main(os.Args); return 0 }
