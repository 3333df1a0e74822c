package csrapprover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	certificateslisters "k8s.io/client-go/listers/certificates/v1"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// Event reasons on a CSR.
const (
	ReasonApproved    = "KubestrapApproved"
	ReasonNotApproved = "KubestrapNotApproved"
)

// Controller approves kubelet serving CSRs that pass Check and freezes nodes' join addresses.
// Several controllers (one per control-plane node) may run at once: approval and the record's
// update both go through the API's optimistic concurrency, so they need no leader election.
type Controller struct {
	client   kubeclient.Interface
	recorder record.EventRecorder
	log      io.Writer

	csrs      certificateslisters.CertificateSigningRequestLister
	leases    coordinationlisters.LeaseLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	informers []cache.SharedIndexInformer

	mu sync.Mutex
	// reported is the last rejection announced per CSR, so that an unchanged verdict is not
	// repeated as a new Event at every re-evaluation.
	reported map[string]string
	// notReady is why the controller cannot approve yet (nil once it can), for /readyz.
	notReady error
}

// servingOnly selects the kubelet-serving CSRs, the only ones the approver watches and may list
// (a function, not a variable: every command of the front would build it at start-up).
func servingOnly() string {
	return fields.OneTermEqualSelector("spec.signerName", certificatesv1.KubeletServingSignerName).String()
}

// Queue keys: a CSR by name, or a node whose Lease changed.
const leaseKeyPrefix = "lease/"

// New builds a controller over client. Events go to recorder (NewRecorder in production).
func New(client kubeclient.Interface, recorder record.EventRecorder, log io.Writer) *Controller {
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log,
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		reported: map[string]string{},
		notReady: errors.New("not started"),
	}
	// Shared informers over kubeclient: client-go's informer factory would need its clientset.
	// Only kubelet-serving CSRs: the approver has nothing to say about any other signer's.
	csrInformer := cache.NewSharedIndexInformer(kubeclient.ListWatch(client, client.CertificatesV1().CertificateSigningRequests(), servingOnly()),
		&certificatesv1.CertificateSigningRequest{}, 0, cache.Indexers{})
	leaseInformer := cache.NewSharedIndexInformer(kubeclient.ListWatch(client, client.CoordinationV1().Leases(corev1.NamespaceNodeLease), ""),
		&coordinationv1.Lease{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	c.informers = []cache.SharedIndexInformer{csrInformer, leaseInformer}
	c.csrs = certificateslisters.NewCertificateSigningRequestLister(csrInformer.GetIndexer())
	c.leases = coordinationlisters.NewLeaseLister(leaseInformer.GetIndexer())
	c.synced = []cache.InformerSynced{csrInformer.HasSynced, leaseInformer.HasSynced}

	enqueueCSR := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
			c.queue.Add(csr.Name)
		}
	}
	_, _ = csrInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueCSR,
		UpdateFunc: func(_, obj any) { enqueueCSR(obj) },
		DeleteFunc: func(obj any) {
			if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
				c.forget(csr.Name)
			}
		},
	})
	enqueueLease := func(obj any) {
		if l, ok := obj.(*coordinationv1.Lease); ok && l.Annotations[JoinAddressesAnnotation] != "" {
			c.queue.Add(leaseKeyPrefix + l.Name)
		}
	}
	_, _ = leaseInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueLease,
		// A kubelet renews its Lease every few seconds; only a changed annotation is news.
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*coordinationv1.Lease)
			n, ok2 := obj.(*coordinationv1.Lease)
			if ok1 && ok2 && o.Annotations[JoinAddressesAnnotation] != n.Annotations[JoinAddressesAnnotation] {
				enqueueLease(obj)
			}
		},
	})
	return c
}

// NewRecorder returns an event recorder that writes core/v1 Events through client as
// kubestrap-csr-approver, and the function that stops it.
func NewRecorder(client kubeclient.Interface) (record.EventRecorder, func()) {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(eventSink{client})
	return b.NewRecorder(kubeclient.Scheme, corev1.EventSource{Component: Program}), b.Shutdown
}

// eventSink writes the recorder's Events in their own namespaces, as client-go's EventSinkImpl
// does for a clientset.
type eventSink struct{ client kubeclient.Interface }

func (s eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	return s.client.CoreV1().Events(e.Namespace).Create(context.Background(), e, metav1.CreateOptions{})
}

func (s eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	return s.client.CoreV1().Events(e.Namespace).Update(context.Background(), e, metav1.UpdateOptions{})
}

func (s eventSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	return s.client.CoreV1().Events(e.Namespace).Patch(context.Background(), e.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
}

// Run starts the informers and processes CSRs until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	if !c.waitForAccess(ctx) {
		return c.stoppedEarly(ctx)
	}
	for _, inf := range c.informers {
		go inf.RunWithContext(ctx)
	}
	c.setNotReady(errors.New("the CertificateSigningRequest and Lease caches have not synced yet"))
	fmt.Fprintf(c.log, "[csr-approver] Watching %s CertificateSigningRequests and the join addresses on kube-node-lease Leases\n", certificatesv1.KubeletServingSignerName)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return c.stoppedEarly(ctx)
	}
	go wait.UntilWithContext(ctx, c.worker, time.Second)
	c.setNotReady(nil)
	<-ctx.Done()
	c.setNotReady(errors.New("stopping"))
	return nil
}

// stoppedEarly: only a stop ends the waits before the caches sync (SIGTERM from systemd, the
// supervisor or the kubelet, e.g. while the apiserver is still coming up after a boot): a clean
// stop, exit 0, so that systemd does not mark the unit failed.
func (c *Controller) stoppedEarly(ctx context.Context) error {
	c.setNotReady(errors.New("stopping"))
	fmt.Fprintf(c.log, "[csr-approver] Stopped before the CSR and Lease caches synced: %v\n", ctx.Err())
	return nil
}

// Ready is nil once the controller approves: it may read the CSRs and Leases, its caches hold
// them, and its worker runs. Otherwise it says what the controller is waiting for. Approvals go
// through the API's optimistic concurrency, so there is no leader to wait for.
func (c *Controller) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notReady
}

func (c *Controller) setNotReady(err error) {
	c.mu.Lock()
	c.notReady = err
	c.mu.Unlock()
}

// waitForAccess polls until the approver may list what its informers watch. Its rights are
// created by init's csr-approver phase after the control plane is up, and its process starts with
// the control plane: an informer started before them would retry its list with a backoff that
// grows to half a minute or more, holding readiness (and init's wait for it) that long after the
// rights exist. It reports false when ctx ends first.
func (c *Controller) waitForAccess(ctx context.Context) bool {
	start := time.Now()
	var last string
	for {
		err := c.canList(ctx)
		c.setNotReady(err)
		if err == nil {
			return true
		}
		if msg := err.Error(); msg != last {
			last = msg
			fmt.Fprintf(c.log, "[csr-approver] Waiting: %v (retrying)\n", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(accessRetry(time.Since(start))):
		}
	}
}

// accessRetry is the pause between access checks, running for since: short while init is about
// to grant the rights (it waits for this approver's readiness right after, so each pause is time
// added to init: a 1 s pause cost init about a second), long once that moment has long passed, so
// that an approver left without rights does not list every quarter second for ever.
func accessRetry(since time.Duration) time.Duration {
	if since < accessFastRetryFor {
		return 250 * time.Millisecond
	}
	return 2 * time.Second
}

// accessFastRetryFor covers init's wait for the control plane on a slow machine.
const accessFastRetryFor = 3 * time.Minute

func (c *Controller) canList(ctx context.Context) error {
	_, err := c.client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{
		Limit:         1,
		FieldSelector: servingOnly(),
	})
	if err != nil {
		return fmt.Errorf("cannot list %s CertificateSigningRequests: %w", certificatesv1.KubeletServingSignerName, err)
	}
	if _, err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("cannot list the Leases in %s: %w", corev1.NamespaceNodeLease, err)
	}
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	var err error
	if node, ok := strings.CutPrefix(key, leaseKeyPrefix); ok {
		err = c.syncLease(ctx, node)
	} else {
		err = c.syncCSR(ctx, key)
	}
	if err != nil {
		fmt.Fprintf(c.log, "[csr-approver] %s: %v (retrying)\n", key, err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// syncLease freezes the node's join addresses (when its Lease carries them and nothing is
// recorded yet), then re-evaluates the node's pending CSRs, which may have waited for them.
func (c *Controller) syncLease(ctx context.Context, node string) error {
	if _, err := c.recordedAddresses(ctx, node); err != nil {
		return err
	}
	all, err := c.csrs.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, csr := range all {
		if csr.Spec.Username == nodeUserPrefix+node && pending(csr) {
			c.queue.Add(csr.Name)
		}
	}
	return nil
}

// syncCSR approves a pending kubelet serving CSR that passes Check; one that does not stays
// pending, with an Event naming the failed check.
func (c *Controller) syncCSR(ctx context.Context, name string) error {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(name)
		return nil
	}
	if err != nil {
		return err
	}
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName || !pending(csr) {
		c.forget(name)
		return nil
	}
	known := map[string][]netip.Addr{}
	if node, ok := strings.CutPrefix(csr.Spec.Username, nodeUserPrefix); ok && node != "" {
		addrs, err := c.recordedAddresses(ctx, node)
		if err != nil {
			return err
		}
		if addrs != nil {
			known[node] = addrs
		}
	}
	if rej := Check(csr, known); rej != nil {
		c.report(csr, rej.Error())
		return nil
	}
	approved := csr.DeepCopy()
	msg := fmt.Sprintf("approved by %s: requested by %s for itself; its DNS names and IP addresses are its own", Program, csr.Spec.Username)
	approved.Status.Conditions = append(approved.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type:           certificatesv1.CertificateApproved,
		Status:         corev1.ConditionTrue,
		Reason:         ReasonApproved,
		Message:        msg,
		LastUpdateTime: metav1.Now(),
	})
	if _, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, approved, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	fmt.Fprintf(c.log, "[csr-approver] Approved %s (%s)\n", name, csr.Spec.Username)
	c.recorder.Event(csr, corev1.EventTypeNormal, ReasonApproved, msg)
	c.forget(name)
	return nil
}

// report announces why csr stays pending, once per distinct reason.
func (c *Controller) report(csr *certificatesv1.CertificateSigningRequest, why string) {
	c.mu.Lock()
	same := c.reported[csr.Name] == why
	c.reported[csr.Name] = why
	c.mu.Unlock()
	if same {
		return
	}
	msg := "left pending by " + Program + ": " + why
	fmt.Fprintf(c.log, "[csr-approver] %s (%s): %s\n", csr.Name, csr.Spec.Username, msg)
	c.recorder.Event(csr, corev1.EventTypeWarning, ReasonNotApproved, msg)
}

func (c *Controller) forget(name string) {
	c.mu.Lock()
	delete(c.reported, name)
	c.mu.Unlock()
}

// pending: neither approved nor denied (nor failed) yet.
func pending(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, cond := range csr.Status.Conditions {
		switch cond.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			return false
		}
	}
	return true
}

// recordedAddresses returns the addresses frozen for node, freezing the value on the node's
// Lease first when none is recorded. nil means nothing is known about the node. A value on the
// Lease that differs from the frozen one is a later self-report, and is ignored.
func (c *Controller) recordedAddresses(ctx context.Context, node string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		out = nil
		cm, err := c.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, RecordName, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("ConfigMap kube-system/%s, where join addresses are recorded, does not exist: run 'kubestrap init phase csr-approver' on the control plane", RecordName)
			}
			return fmt.Errorf("read the join address record: %w", err)
		}
		if v, ok := cm.Data[node]; ok {
			addrs, err := ParseAddresses(v)
			if err != nil {
				// Only an admin can have written this; say so rather than trust part of it.
				fmt.Fprintf(c.log, "[csr-approver] kube-system/%s entry %q: %v; treating the node as having no recorded addresses\n", RecordName, node, err)
				return nil
			}
			out = addrs
			if l, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(node); err == nil {
				if v2 := l.Annotations[JoinAddressesAnnotation]; v2 != "" && v2 != v {
					fmt.Fprintf(c.log, "[csr-approver] node %s: ignoring %s=%q on its Lease; the addresses recorded when it joined are %q\n", node, JoinAddressesAnnotation, v2, v)
				}
			}
			return nil
		}
		l, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(node)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		v := l.Annotations[JoinAddressesAnnotation]
		if v == "" {
			return nil
		}
		addrs, err := ParseAddresses(v)
		if err != nil {
			fmt.Fprintf(c.log, "[csr-approver] node %s: not recording %s=%q from its Lease: %v\n", node, JoinAddressesAnnotation, v, err)
			return nil
		}
		cm = cm.DeepCopy()
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[node] = FormatAddresses(addrs)
		if _, err := c.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			return err
		}
		fmt.Fprintf(c.log, "[csr-approver] Recorded the join addresses of node %s: %s\n", node, cm.Data[node])
		out = addrs
		return nil
	})
	return out, err
}
