package reset

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubestrap/kubestrap/internal/etcdcluster"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/preflight"
)

// DialEtcd connects to an etcd cluster (etcdcluster.Dial).
type DialEtcd func(ctx context.Context, endpoints []string, tlsConfig *tls.Config) (etcdcluster.Client, error)

// EtcdEndpoints returns the etcd client URLs (on clientPort) of the cluster's control-plane nodes
// as the API knows them (etcdcluster.Endpoints through admin.conf).
type EtcdEndpoints func(ctx context.Context, clientPort int32) ([]string, error)

// etcdCallTimeout bounds the membership calls; a cluster without quorum would otherwise hold
// reset for as long as it stays broken.
const etcdCallTimeout = 30 * time.Second

// apiTimeout bounds asking the API for the other control-plane nodes: it may be down with
// the rest of this node.
const apiTimeout = 5 * time.Second

// endpointsFromAPI asks the cluster, with this root's admin.conf, for its control-plane nodes'
// etcd client URLs.
func (r *Reset) endpointsFromAPI(ctx context.Context, clientPort int32) ([]string, error) {
	c, err := kubeclient.FromKubeconfigFile(r.p.Kubeconfig("admin.conf"), kubeclient.Options{Timeout: apiTimeout, Log: r.log})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	return etcdcluster.Endpoints(ctx, c, clientPort)
}

// EtcdQuorumCheck is the name under which --ignore-preflight-errors overrides reset's etcd quorum
// guard (see RemoveEtcdMember).
const EtcdQuorumCheck = "EtcdQuorum"

// RemoveEtcdMember takes this node's etcd member out of its cluster when the cluster has other
// members, as kubeadm's remove-etcd-member phase does; it runs before the stop phase, while the
// local etcd still answers. When it does not (a node that was powered off, or whose etcd
// crashed), the other members are found through the API (admin.conf: the control-plane nodes'
// addresses) and this member's own --initial-cluster, and the member is removed through them.
//
// A removal after which the healthy voting members left would be fewer than a quorum of those
// left is refused with an error, before anything is stopped or deleted, unless the check
// EtcdQuorumCheck is ignored (--ignore-preflight-errors): then it is a warning and reset goes on.
// --force does not override it: it only skips the prompt, and scripts pass it always. A single
// member is left alone (its data is deleted by cleanup),
// and a cluster that cannot be reached at all only gets a warning with the command to run by
// hand, so that a broken node can always be reset.
func (r *Reset) RemoveEtcdMember(ctx context.Context) error {
	args := r.layout.EtcdArgs()
	if args == nil {
		fmt.Fprintf(r.log, "[reset] No local etcd member under %s (a worker node, external etcd, or an init that stopped before etcd): nothing to remove\n", r.p.Root())
		return nil
	}
	name := args["name"]
	manual := fmt.Sprintf("if this node's etcd (member %q) was one of several, remove it from a running member with: etcdctl member list && etcdctl member remove <ID>", name)

	tlsConfig, err := etcdClientTLS(args)
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: cannot authenticate to etcd: %v; %s\n", err, manual)
		return nil
	}
	local := clientURLs(args)
	done := logx.Wait(r.log, "this node's etcd to answer on %s", strings.Join(local, ","))
	endpoints := reachable(local, r.sys.ProbeTimeout)
	if len(endpoints) == 0 {
		done(errors.New("no answer"))
	} else {
		done(nil)
	}
	if len(endpoints) == 0 {
		others := r.otherMembers(ctx, args)
		if len(others) == 0 {
			fmt.Fprintf(r.log, "[reset] WARNING: this node's etcd does not answer on %s, and no other member was found (through %s or its --initial-cluster): skipping its removal from the etcd cluster; %s\n", strings.Join(local, ","), r.p.Kubeconfig("admin.conf"), manual)
			return nil
		}
		fmt.Fprintf(r.log, "[reset] This node's etcd does not answer on %s; removing its member through the other members at %s\n", strings.Join(local, ","), strings.Join(others, ","))
		endpoints = others
	}

	ctx, cancel := context.WithTimeout(ctx, etcdCallTimeout)
	defer cancel()
	done = logx.Wait(r.log, "a connection to etcd at %s", strings.Join(endpoints, ","))
	cluster, err := r.sys.DialEtcd(ctx, endpoints, tlsConfig)
	done(err)
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: cannot connect to etcd at %s: %v; %s\n", strings.Join(endpoints, ","), err, manual)
		return nil
	}
	defer cluster.Close()
	cluster = loggedEtcd{Client: cluster, r: r, endpoints: endpoints}
	members, err := cluster.MemberList(ctx)
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: listing the etcd members: %v; %s\n", err, manual)
		return nil
	}
	if len(members) <= 1 {
		fmt.Fprintf(r.log, "[reset] This node's etcd member %q is the only member of its cluster: nothing to remove (its data is deleted with the node's files)\n", name)
		return nil
	}
	peers := splitURLs(args["initial-advertise-peer-urls"])
	i := slices.IndexFunc(members, func(m etcdcluster.Member) bool {
		return (name != "" && m.Name == name) || slices.ContainsFunc(m.PeerURLs, func(u string) bool { return slices.Contains(peers, u) })
	})
	if i < 0 {
		fmt.Fprintf(r.log, "[reset] WARNING: this node's etcd member (name %q, peer URLs %v) is not among the %d members of the cluster: nothing to remove\n", name, peers, len(members))
		return nil
	}
	m := members[i]

	// The quorum guard, before anything is stopped or deleted.
	done = logx.Wait(r.log, "the health of the etcd members that would remain")
	_, err = etcdcluster.CheckRemoval(ctx, cluster, m.ID)
	done(nil)
	var qe *etcdcluster.QuorumError
	switch {
	case errors.As(err, &qe) && !preflight.Ignored(EtcdQuorumCheck, r.o.IgnorePreflightErrors):
		return fmt.Errorf("refusing to reset this node: %w (nothing was stopped or deleted). Bring the unhealthy members back (or remove them) first; to remove this member anyway and leave etcd without a quorum, run reset again with --ignore-preflight-errors=%s (--force does not override this check)", err, EtcdQuorumCheck)
	case errors.As(err, &qe):
		fmt.Fprintf(r.log, "[reset] WARNING: --ignore-preflight-errors=%s: going on although %v\n", EtcdQuorumCheck, err)
	case err != nil:
		fmt.Fprintf(r.log, "[reset] WARNING: checking whether the etcd cluster keeps its quorum without member %q: %v; %s\n", m.Name, err, manual)
		return nil
	}

	r.changes++
	if r.o.DryRun {
		fmt.Fprintf(r.log, "[dryrun] Would remove etcd member %q (ID %x) from the etcd cluster of %d members\n", m.Name, m.ID, len(members))
		return nil
	}
	done = logx.Wait(r.log, "etcd to remove member %q (ID %x)", m.Name, m.ID)
	err = cluster.MemberRemove(ctx, m.ID)
	done(err)
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: removing etcd member %q (ID %x): %v; remove it from a running member with: etcdctl member remove %x\n", m.Name, m.ID, err, m.ID)
		return nil
	}
	fmt.Fprintf(r.log, "[reset] Removed etcd member %q (ID %x) from the etcd cluster; %d members remain\n", m.Name, m.ID, len(members)-1)
	return nil
}

// otherMembers are the client URLs of the other members that accept a connection, for a node
// whose own etcd is down: the control-plane nodes the API lists (through admin.conf, which may
// point at a load balancer in front of the others) and the peers of this member's
// --initial-cluster, each on this member's client port (stacked members share the layout).
func (r *Reset) otherMembers(ctx context.Context, args map[string]string) []string {
	port := clientPort(args)
	if port == 0 {
		return nil
	}
	own := map[string]bool{}
	for _, u := range append(clientURLs(args), splitURLs(args["initial-advertise-peer-urls"])...) {
		if pu, err := url.Parse(u); err == nil {
			own[pu.Hostname()] = true
		}
	}
	var candidates []string
	fromAPI, err := r.sys.EtcdEndpoints(ctx, port)
	if err != nil {
		fmt.Fprintf(r.log, "[reset] Could not list the other control-plane nodes through the API: %v\n", err)
	}
	candidates = append(candidates, fromAPI...)
	for _, kv := range strings.Split(args["initial-cluster"], ",") {
		_, peer, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		pu, err := url.Parse(peer)
		if err != nil || pu.Hostname() == "" {
			continue
		}
		candidates = append(candidates, "https://"+net.JoinHostPort(pu.Hostname(), strconv.Itoa(int(port))))
	}
	var out []string
	for _, u := range candidates {
		pu, err := url.Parse(u)
		if err != nil || own[pu.Hostname()] || slices.Contains(out, u) {
			continue
		}
		out = append(out, u)
	}
	return reachable(out, r.sys.ProbeTimeout)
}

// clientPort is the port this member serves clients on, 0 when its flags name none.
func clientPort(args map[string]string) int32 {
	for _, u := range clientURLs(args) {
		pu, err := url.Parse(u)
		if err != nil {
			continue
		}
		if p, err := strconv.ParseInt(pu.Port(), 10, 32); err == nil && p > 0 {
			return int32(p)
		}
	}
	return 0
}

// loggedEtcd reports each membership call reset makes, the quorum check's included, at -v 2.
type loggedEtcd struct {
	etcdcluster.Client
	r         *Reset
	endpoints []string
}

func (l loggedEtcd) MemberList(ctx context.Context) (ms []etcdcluster.Member, err error) {
	err = l.r.etcdCall("MemberList", l.endpoints, func() error { ms, err = l.Client.MemberList(ctx); return err })
	return ms, err
}

func (l loggedEtcd) MemberRemove(ctx context.Context, id uint64) error {
	return l.r.etcdCall(fmt.Sprintf("MemberRemove %x", id), l.endpoints, func() error { return l.Client.MemberRemove(ctx, id) })
}

func (l loggedEtcd) Status(ctx context.Context, endpoint string) (st etcdcluster.Status, err error) {
	err = l.r.etcdCall("Status", []string{endpoint}, func() error { st, err = l.Client.Status(ctx, endpoint); return err })
	return st, err
}

// etcdCall runs one etcd API call and reports it at -v 2, as the Kubernetes API calls are.
func (r *Reset) etcdCall(what string, endpoints []string, call func() error) error {
	start := time.Now()
	err := call()
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		logx.Printf(r.log, logx.LevelAPI, "etcd %s at %s failed after %s: %v", what, strings.Join(endpoints, ","), took, err)
		return err
	}
	logx.Printf(r.log, logx.LevelAPI, "etcd %s at %s OK in %s", what, strings.Join(endpoints, ","), took)
	return nil
}

// clientURLs are the URLs this node's etcd serves clients on, loopback first.
func clientURLs(args map[string]string) []string {
	var out []string
	for _, u := range append(splitURLs(args["listen-client-urls"]), splitURLs(args["advertise-client-urls"])...) {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			continue
		}
		host := pu.Hostname()
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			// A wildcard listener is reached on loopback.
			pu.Host = net.JoinHostPort("127.0.0.1", pu.Port())
			if ip.To4() == nil {
				pu.Host = net.JoinHostPort("::1", pu.Port())
			}
		}
		out = appendNew(out, pu.String())
	}
	slices.SortStableFunc(out, func(a, b string) int {
		return boolInt(!isLoopbackURL(a)) - boolInt(!isLoopbackURL(b))
	})
	return out
}

func isLoopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	ip := net.ParseIP(pu.Hostname())
	return pu.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// reachable keeps the URLs whose port accepts a TCP connection within timeout: an etcd that is
// not running is told apart at once, without waiting for the client's dial timeout.
func reachable(urls []string, timeout time.Duration) []string {
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	var out []string
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			continue
		}
		c, err := net.DialTimeout("tcp", pu.Host, timeout)
		if err != nil {
			continue
		}
		c.Close()
		out = append(out, u)
	}
	return out
}

// etcdClientTLS authenticates as kube-etcd-healthcheck-client, the identity kubeadm uses for
// the same job, from the etcd PKI dir the member's own flags name.
func etcdClientTLS(args map[string]string) (*tls.Config, error) {
	caFile := args["trusted-ca-file"]
	if caFile == "" {
		return nil, errors.New("the etcd member has no --trusted-ca-file")
	}
	dir := filepath.Dir(caFile)
	return etcdcluster.ClientTLS(caFile, filepath.Join(dir, "healthcheck-client.crt"), filepath.Join(dir, "healthcheck-client.key"))
}
