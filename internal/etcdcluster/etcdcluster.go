// Package etcdcluster is the one place kubestrap talks to an etcd cluster's membership: connecting
// with TLS, listing members, adding a control-plane node's member as a learner and promoting it
// once it has caught up, removing a member without losing quorum, each voting member's health
// through its own client URL, and the lock that serialises control-plane joins. Everything goes
// through Client, a small interface over etcd's clientv3, so the decisions (refuse a second
// learner, refuse a removal that loses quorum, treat a promote that timed out but succeeded as a
// success) are tested with fakes as well as against real etcd.
package etcdcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Member is one member of an etcd cluster. A member added but not started yet has no Name and no
// ClientURLs.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// String names a member in messages: name (ID hex, first peer URL).
func (m Member) String() string {
	name := m.Name
	if name == "" {
		name = "(not started)"
	}
	return fmt.Sprintf("%q (ID %x, peer %s)", name, m.ID, strings.Join(m.PeerURLs, ","))
}

// Status is what one member says about itself through its own client URL.
type Status struct {
	MemberID  uint64
	Leader    uint64
	RaftIndex uint64
	IsLearner bool
	// Errors are the member's alarms and errors (e.g. "NOSPACE"); any makes it unhealthy.
	Errors []string
}

// Client is the part of etcd's client API membership changes need.
type Client interface {
	MemberList(ctx context.Context) ([]Member, error)
	// MemberAddAsLearner adds a non-voting member with peerURL and returns it.
	MemberAddAsLearner(ctx context.Context, peerURL string) (Member, error)
	MemberPromote(ctx context.Context, id uint64) error
	MemberRemove(ctx context.Context, id uint64) error
	// Status asks the member serving endpoint (a client URL) about itself.
	Status(ctx context.Context, endpoint string) (Status, error)
	// Lock takes the mutex key in a session of ttl; unlock releases both. A holder that dies
	// loses the lock when its session's lease expires.
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error)
	Close() error
}

// DialTimeout bounds connecting to the cluster.
const DialTimeout = 5 * time.Second

// StatusTimeout bounds one member's status request: a powered-off member never answers, and the
// request would otherwise wait for as long as its caller's context allows.
var StatusTimeout = 5 * time.Second

// LockTTL is the lease of a join's lock: a joiner killed while holding it releases it after this.
const LockTTL = 30 * time.Second

// ClientTLS is the client side of etcd's mutual TLS: trust caFile, present certFile/keyFile.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the etcd client certificate %s: %w", certFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the etcd CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Dial connects to the cluster through endpoints (client URLs). ctx is the client's lifetime:
// cancelling it closes the connection, so pass the context of the whole job, not of one call.
// The connection is lazy: a cluster that does not answer fails the first call, within that
// call's context.
func Dial(ctx context.Context, endpoints []string, tlsConfig *tls.Config) (Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("no etcd endpoint to connect to")
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
		DialTimeout: DialTimeout,
		Context:     ctx,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %s: %w", strings.Join(endpoints, ","), err)
	}
	return &client{c: c}, nil
}

type client struct{ c *clientv3.Client }

// linearizableListTimeout bounds MemberList's first, linearizable attempt.
const linearizableListTimeout = 5 * time.Second

// MemberList asks for the membership through the leader; when that fails (a cluster that lost its
// quorum has no leader) it takes the answering member's own view, so that the quorum guard can
// still say which members are missing instead of giving up.
func (e *client) MemberList(ctx context.Context) ([]Member, error) {
	lctx, cancel := context.WithTimeout(ctx, linearizableListTimeout)
	resp, err := e.c.MemberList(lctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		resp, err = e.c.MemberList(ctx, clientv3.WithSerializable())
	}
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out, nil
}

func (e *client) MemberAddAsLearner(ctx context.Context, peerURL string) (Member, error) {
	resp, err := e.c.MemberAddAsLearner(ctx, []string{peerURL})
	if err != nil {
		return Member{}, err
	}
	m := resp.Member
	return Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}, nil
}

func (e *client) MemberPromote(ctx context.Context, id uint64) error {
	_, err := e.c.MemberPromote(ctx, id)
	return err
}

func (e *client) MemberRemove(ctx context.Context, id uint64) error {
	_, err := e.c.MemberRemove(ctx, id)
	return err
}

func (e *client) Status(ctx context.Context, endpoint string) (Status, error) {
	resp, err := e.c.Status(ctx, endpoint)
	if err != nil {
		return Status{}, err
	}
	return Status{MemberID: resp.Header.GetMemberId(), Leader: resp.Leader, RaftIndex: resp.RaftIndex, IsLearner: resp.IsLearner, Errors: resp.Errors}, nil
}

func (e *client) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	secs := int(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	s, err := concurrency.NewSession(e.c, concurrency.WithTTL(secs))
	if err != nil {
		return nil, fmt.Errorf("starting an etcd session for lock %s: %w", key, err)
	}
	m := concurrency.NewMutex(s, key)
	if err := m.Lock(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("taking lock %s: %w", key, err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Unlock(uctx)
		// Closing the session revokes its lease, which would release the lock on its own too.
		s.Close()
	}, nil
}

func (e *client) Close() error { return e.c.Close() }

// Lock takes the cluster-wide lock key for as long as the caller holds it, with a session of
// LockTTL so that a caller killed while holding it does not block the next one for longer.
// Control-plane joins take it around add-learner, start and promote, so that two joins never
// change the membership at the same time (k3s-io/k3s#4335, k0sproject/k0s#6003).
func Lock(ctx context.Context, c Client, key string) (unlock func(), err error) {
	return c.Lock(ctx, key, LockTTL)
}

// Health asks each voting member for its status through its own client URLs, all at once, and
// counts those that answer as themselves, know a leader and report no error. Learners do not
// vote, so they are neither counted nor checked.
func Health(ctx context.Context, c Client) (healthy, total int, unhealthy []Member, err error) {
	members, err := c.MemberList(ctx)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("listing the etcd members: %w", err)
	}
	voters := votersOf(members)
	bad := checkMembers(ctx, c, voters)
	for _, m := range voters {
		if _, ok := bad[m.ID]; ok {
			unhealthy = append(unhealthy, m)
		}
	}
	return len(voters) - len(unhealthy), len(voters), unhealthy, nil
}

// UnhealthyError lists members that did not answer as healthy, each with the reason.
type UnhealthyError struct {
	Members []Member
	Reasons []string
}

func (e *UnhealthyError) Error() string {
	var parts []string
	for i, m := range e.Members {
		parts = append(parts, fmt.Sprintf("%s: %s", m, e.Reasons[i]))
	}
	return strings.Join(parts, "; ")
}

// checkMembers returns, for each member that is not healthy, why.
func checkMembers(ctx context.Context, c Client, members []Member) map[uint64]string {
	var mu sync.Mutex
	bad := map[uint64]string{}
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if why := checkMember(ctx, c, m); why != "" {
				mu.Lock()
				bad[m.ID] = why
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return bad
}

// checkMember returns "" when one of m's client URLs answers as m, with a leader and no errors.
func checkMember(ctx context.Context, c Client, m Member) string {
	if len(m.ClientURLs) == 0 {
		return "not started (no client URL)"
	}
	var why []string
	for _, u := range m.ClientURLs {
		sctx, cancel := context.WithTimeout(ctx, StatusTimeout)
		st, err := c.Status(sctx, u)
		cancel()
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("%s: %v", u, err))
		case st.MemberID != m.ID:
			why = append(why, fmt.Sprintf("%s answers as member %x", u, st.MemberID))
		case len(st.Errors) > 0:
			why = append(why, fmt.Sprintf("%s: %s", u, strings.Join(st.Errors, ", ")))
		case st.Leader == 0:
			why = append(why, fmt.Sprintf("%s: no leader", u))
		default:
			return ""
		}
	}
	return strings.Join(why, "; ")
}

func votersOf(members []Member) []Member {
	var out []Member
	for _, m := range members {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

// AddLearner adds a non-voting member named name with peerURL, and returns it and the
// --initial-cluster its etcd must start with (every started member's name=peerURL, and this one).
// It refuses while another learner exists (another join in progress, or one that failed: etcd
// allows one learner at a time, and two concurrent joins are how clusters break) and while a
// voting member is unhealthy. A learner with this peer URL already there is this join retried: it
// is returned as it is.
func AddLearner(ctx context.Context, c Client, name, peerURL string) (Member, string, error) {
	members, err := c.MemberList(ctx)
	if err != nil {
		return Member{}, "", fmt.Errorf("listing the etcd members: %w", err)
	}
	for _, m := range members {
		if !slices.Contains(m.PeerURLs, peerURL) {
			continue
		}
		if m.IsLearner {
			m.Name = name
			return m, initialCluster(members, m.ID, name), nil
		}
		return Member{}, "", fmt.Errorf("peer URL %s already belongs to voting etcd member %s: a node with this address is already a control plane; run `kubestrap reset` on it, or remove the member (etcdctl member remove %x) if the node is gone", peerURL, m, m.ID)
	}
	if i := slices.IndexFunc(members, func(m Member) bool { return m.IsLearner }); i >= 0 {
		l := members[i]
		return Member{}, "", fmt.Errorf("etcd member %s is a learner: another control-plane join is in progress, or one failed without removing its member; wait for it, or remove the learner with `etcdctl member remove %x` and join again", l, l.ID)
	}
	voters := votersOf(members)
	if bad := checkMembers(ctx, c, voters); len(bad) > 0 {
		ue := &UnhealthyError{}
		for _, m := range voters {
			if why, ok := bad[m.ID]; ok {
				ue.Members, ue.Reasons = append(ue.Members, m), append(ue.Reasons, why)
			}
		}
		return Member{}, "", fmt.Errorf("refusing to add a member while %d of the %d voting etcd members are unhealthy (%w): a new member changes the quorum; bring them back or remove them first", len(ue.Members), len(voters), ue)
	}
	// etcd itself answers "unhealthy cluster" until every member has been connected for its
	// health interval (5 s), e.g. right after the previous join's promotion: that passes.
	var m Member
	err = wait.ExponentialBackoffWithContext(ctx, addBackoff, func(ctx context.Context) (bool, error) {
		m, err = c.MemberAddAsLearner(ctx, peerURL)
		if err != nil && isUnhealthy(err) {
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return Member{}, "", fmt.Errorf("adding etcd learner %q with peer URL %s: %w", name, peerURL, err)
	}
	m.Name = name
	m.IsLearner = true
	after := append(slices.Clone(members), m)
	return m, initialCluster(after, m.ID, name), nil
}

// addBackoff paces AddLearner's retries while etcd calls the cluster unhealthy: about 30 s.
var addBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: 10, Cap: 5 * time.Second}

func isUnhealthy(err error) bool {
	return errors.Is(err, rpctypes.ErrUnhealthy) || rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(rpctypes.ErrGRPCUnhealthy)
}

// initialCluster is etcd's --initial-cluster for the member id named name: name=peerURL for every
// member that has started (has a name), and for id itself.
func initialCluster(members []Member, id uint64, name string) string {
	var parts []string
	for _, m := range members {
		n := m.Name
		if m.ID == id {
			n = name
		}
		if n == "" {
			continue
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// promoteBackoff paces Promote's attempts: a learner usually catches up within seconds.
var promoteBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: 1 << 20, Cap: 5 * time.Second}

// promoteCallTimeout bounds one MemberPromote call.
var promoteCallTimeout = 10 * time.Second

// Promote makes learner id a voting member once it has started and caught up with the leader,
// within timeout. etcd refuses to promote a learner that is behind; that answer, a timeout, or a
// lost connection is followed by a fresh member list, because a promote that timed out may have
// been applied: a member that is a voter already is success, never a second promote.
func Promote(ctx context.Context, c Client, id uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, promoteBackoff, func(ctx context.Context) (bool, error) {
		members, err := c.MemberList(ctx)
		if err != nil {
			last = fmt.Errorf("listing the etcd members: %w", err)
			return false, nil
		}
		i := slices.IndexFunc(members, func(m Member) bool { return m.ID == id })
		if i < 0 {
			return false, fmt.Errorf("etcd member %x is not in the cluster any more: it was removed while it was being promoted", id)
		}
		m := members[i]
		if !m.IsLearner {
			return true, nil
		}
		if m.Name == "" {
			last = fmt.Errorf("learner %s has not started yet", m)
			return false, nil
		}
		pctx, pcancel := context.WithTimeout(ctx, promoteCallTimeout)
		err = c.MemberPromote(pctx, id)
		pcancel()
		switch {
		case err == nil:
			return true, nil
		case isLearnerNotReady(err):
			last = fmt.Errorf("learner %s has not caught up with the leader yet", m)
		default:
			// Maybe applied: the next round's member list tells.
			last = fmt.Errorf("promoting learner %s: %w", m, err)
		}
		return false, nil
	})
	if err == nil {
		return nil
	}
	if wait.Interrupted(err) || errors.Is(err, context.DeadlineExceeded) {
		// One last look: the final attempt may have been applied as the time ran out.
		lctx, lcancel := context.WithTimeout(context.Background(), StatusTimeout)
		defer lcancel()
		if members, lerr := c.MemberList(lctx); lerr == nil {
			if i := slices.IndexFunc(members, func(m Member) bool { return m.ID == id }); i >= 0 && !members[i].IsLearner {
				return nil
			}
		}
		if last == nil {
			last = err
		}
		return fmt.Errorf("etcd learner %x was not promoted within %s: %w", id, timeout, last)
	}
	return err
}

func isLearnerNotReady(err error) bool {
	return errors.Is(err, rpctypes.ErrMemberLearnerNotReady) || rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(rpctypes.ErrGRPCLearnerNotReady)
}

// ErrNotMember is returned (wrapped) by Remove and CheckRemoval for an ID that is not a member.
var ErrNotMember = errors.New("not a member of the etcd cluster")

// QuorumError is a removal refused because the members left would not have a healthy quorum.
type QuorumError struct {
	Member    Member
	Remaining int // voting members after the removal
	Healthy   int // of those, healthy
	Unhealthy []Member
	Reasons   []string
}

func (e *QuorumError) Error() string {
	var bad []string
	for i, m := range e.Unhealthy {
		bad = append(bad, fmt.Sprintf("%s: %s", m, e.Reasons[i]))
	}
	return fmt.Sprintf("removing etcd member %s would leave %d voting members of which %d are healthy, fewer than the %d a quorum needs, and the cluster would stop accepting writes; unhealthy: %s",
		e.Member, e.Remaining, e.Healthy, e.Remaining/2+1, strings.Join(bad, "; "))
}

// CheckRemoval returns member id, and a *QuorumError when removing it would leave fewer healthy
// voting members than a quorum of the voting members that remain. Removing a learner is always
// safe (learners do not vote); removing the last voting member is refused outright.
func CheckRemoval(ctx context.Context, c Client, id uint64) (Member, error) {
	members, err := c.MemberList(ctx)
	if err != nil {
		return Member{}, fmt.Errorf("listing the etcd members: %w", err)
	}
	i := slices.IndexFunc(members, func(m Member) bool { return m.ID == id })
	if i < 0 {
		return Member{}, fmt.Errorf("etcd member %x: %w", id, ErrNotMember)
	}
	target := members[i]
	if target.IsLearner {
		return target, nil
	}
	var remaining []Member
	for _, m := range votersOf(members) {
		if m.ID != id {
			remaining = append(remaining, m)
		}
	}
	if len(remaining) == 0 {
		return target, fmt.Errorf("etcd member %s is the only voting member of its cluster: removing it would leave no cluster (delete its data instead)", target)
	}
	bad := checkMembers(ctx, c, remaining)
	healthy := len(remaining) - len(bad)
	if healthy >= len(remaining)/2+1 {
		return target, nil
	}
	qe := &QuorumError{Member: target, Remaining: len(remaining), Healthy: healthy}
	for _, m := range remaining {
		if why, ok := bad[m.ID]; ok {
			qe.Unhealthy, qe.Reasons = append(qe.Unhealthy, m), append(qe.Reasons, why)
		}
	}
	return target, qe
}

// Remove removes member id. Unless force, it first refuses (a *QuorumError, saying which members
// are unhealthy; the caller says how its user overrides it) a removal after which the healthy
// remaining voting members would be fewer than a quorum of the remaining membership.
func Remove(ctx context.Context, c Client, id uint64, force bool) error {
	m, err := CheckRemoval(ctx, c, id)
	var qe *QuorumError
	switch {
	case err == nil, force && errors.As(err, &qe):
	default:
		return err
	}
	if err := c.MemberRemove(ctx, id); err != nil {
		return fmt.Errorf("removing etcd member %s: %w", m, err)
	}
	return nil
}

// Endpoints returns the etcd client URLs (https://address:clientPort) of the cluster's
// control-plane nodes as the API knows them: the addresses of the default/kubernetes Service's
// endpoints, which are the apiservers' advertise addresses. A stacked etcd member listens on its
// node's advertise address, so these reach the other members when this node's own etcd is down.
func Endpoints(ctx context.Context, client kubeclient.Interface, clientPort int32) ([]string, error) {
	var addrs []string
	eps, err := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("listing the EndpointSlices of default/kubernetes: %w", err)
	}
	if err == nil {
		for _, s := range eps.Items {
			for _, e := range s.Endpoints {
				addrs = append(addrs, e.Addresses...)
			}
		}
	}
	if len(addrs) == 0 {
		// Clusters that still mirror only the core Endpoints object.
		ep, err := client.CoreV1().Endpoints(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the Endpoints of default/kubernetes: %w", err)
		}
		if err == nil {
			for _, s := range ep.Subsets {
				for _, a := range s.Addresses {
					addrs = append(addrs, a.IP)
				}
			}
		}
	}
	port := strconv.Itoa(int(clientPort))
	var out []string
	for _, a := range addrs {
		u := "https://" + net.JoinHostPort(a, port)
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, errors.New("the API lists no control-plane address for default/kubernetes (a single loopback control plane publishes none)")
	}
	return out, nil
}
