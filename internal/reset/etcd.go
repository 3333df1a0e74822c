package reset

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kubestrap/kubestrap/internal/logx"
)

// EtcdCluster is the part of etcd's cluster API reset needs.
type EtcdCluster interface {
	MemberList(ctx context.Context) ([]EtcdMember, error)
	MemberRemove(ctx context.Context, id uint64) error
	Close() error
}

// EtcdMember is one member of an etcd cluster.
type EtcdMember struct {
	ID       uint64
	Name     string
	PeerURLs []string
}

// DialEtcd connects to an etcd cluster.
type DialEtcd func(ctx context.Context, endpoints []string, tlsConfig *tls.Config) (EtcdCluster, error)

// etcdDialTimeout bounds the connection to this node's own etcd, which either answers at once or
// is not running.
const etcdDialTimeout = 2 * time.Second

// etcdCallTimeout bounds MemberList and MemberRemove; a cluster without quorum would otherwise
// hold reset for as long as it stays broken.
const etcdCallTimeout = 10 * time.Second

// realDialEtcd uses etcd's clientv3.
func realDialEtcd(ctx context.Context, endpoints []string, tlsConfig *tls.Config) (EtcdCluster, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
		DialTimeout: etcdDialTimeout,
		Context:     ctx,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, err
	}
	return etcdClient{c}, nil
}

type etcdClient struct{ c *clientv3.Client }

func (e etcdClient) MemberList(ctx context.Context) ([]EtcdMember, error) {
	resp, err := e.c.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]EtcdMember, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, EtcdMember{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs})
	}
	return out, nil
}

func (e etcdClient) MemberRemove(ctx context.Context, id uint64) error {
	_, err := e.c.MemberRemove(ctx, id)
	return err
}

func (e etcdClient) Close() error { return e.c.Close() }

// RemoveEtcdMember takes this node's etcd member out of its cluster when the cluster has other
// members, as kubeadm's remove-etcd-member phase does; it runs before the stop phase, while the
// local etcd still answers. A single member is left alone (its data is deleted by cleanup), and
// an etcd that cannot be reached only gets a warning with the command to run by hand, so that a
// broken node can always be reset.
func (r *Reset) RemoveEtcdMember(ctx context.Context) error {
	args := r.layout.EtcdArgs()
	if args == nil {
		fmt.Fprintf(r.log, "[reset] No local etcd member under %s (a worker node, external etcd, or an init that stopped before etcd): nothing to remove\n", r.p.Root())
		return nil
	}
	name := args["name"]
	manual := fmt.Sprintf("if this node's etcd (member %q) was one of several, remove it from a running member with: etcdctl member list && etcdctl member remove <ID>", name)

	done := logx.Wait(r.log, "this node's etcd to answer on %s", strings.Join(clientURLs(args), ","))
	endpoints := reachable(clientURLs(args), r.sys.ProbeTimeout)
	if len(endpoints) == 0 {
		done(errors.New("no answer"))
	} else {
		done(nil)
	}
	if len(endpoints) == 0 {
		fmt.Fprintf(r.log, "[reset] WARNING: this node's etcd does not answer on %s: skipping its removal from the etcd cluster; %s\n", strings.Join(clientURLs(args), ","), manual)
		return nil
	}
	tlsConfig, err := etcdClientTLS(args)
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: cannot authenticate to etcd: %v; %s\n", err, manual)
		return nil
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
	var members []EtcdMember
	err = r.etcdCall("MemberList", endpoints, func() (err error) { members, err = cluster.MemberList(ctx); return err })
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: listing the etcd members: %v; %s\n", err, manual)
		return nil
	}
	if len(members) <= 1 {
		fmt.Fprintf(r.log, "[reset] This node's etcd member %q is the only member of its cluster: nothing to remove (its data is deleted with the node's files)\n", name)
		return nil
	}
	peers := splitURLs(args["initial-advertise-peer-urls"])
	i := slices.IndexFunc(members, func(m EtcdMember) bool {
		return (name != "" && m.Name == name) || slices.ContainsFunc(m.PeerURLs, func(u string) bool { return slices.Contains(peers, u) })
	})
	if i < 0 {
		fmt.Fprintf(r.log, "[reset] WARNING: this node's etcd member (name %q, peer URLs %v) is not among the %d members of the cluster: nothing to remove\n", name, peers, len(members))
		return nil
	}
	m := members[i]
	r.changes++
	if r.o.DryRun {
		fmt.Fprintf(r.log, "[dryrun] Would remove etcd member %q (ID %x) from the etcd cluster of %d members\n", m.Name, m.ID, len(members))
		return nil
	}
	done = logx.Wait(r.log, "etcd to remove member %q (ID %x)", m.Name, m.ID)
	err = r.etcdCall(fmt.Sprintf("MemberRemove %x", m.ID), endpoints, func() error { return cluster.MemberRemove(ctx, m.ID) })
	done(err)
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: removing etcd member %q (ID %x): %v; remove it from a running member with: etcdctl member remove %x\n", m.Name, m.ID, err, m.ID)
		return nil
	}
	fmt.Fprintf(r.log, "[reset] Removed etcd member %q (ID %x) from the etcd cluster; %d members remain\n", m.Name, m.ID, len(members)-1)
	return nil
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
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "healthcheck-client.crt"), filepath.Join(dir, "healthcheck-client.key"))
	if err != nil {
		return nil, fmt.Errorf("loading the etcd healthcheck client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
