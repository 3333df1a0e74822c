package reset

import (
	"context"

	"github.com/kubestrap/kubestrap/internal/workflow"
)

// NewRunner is reset's workflow, in kubeadm's order: the etcd member is removed while the local
// etcd still answers. Every phase of kubeadm's reset (preflight, remove-etcd-member,
// cleanup-node) has its counterpart here, under its name or as an alias.
func NewRunner() *workflow.Runner[*Reset] {
	return &workflow.Runner[*Reset]{Command: "reset", Phases: []workflow.Phase[*Reset]{
		{Name: "preflight", Aliases: []string{"pre-flight"}, Short: "Ask for confirmation and run pre-flight checks",
			Run: func(ctx context.Context, r *Reset) error { return r.Preflight(ctx) }},
		{Name: "remove-etcd-member", Short: "Remove this node's etcd member from a multi-member etcd cluster",
			Run: func(ctx context.Context, r *Reset) error { return r.RemoveEtcdMember(ctx) }},
		{Name: "stop", Short: "Stop every process of the root: local supervisor, systemd units, static pods, kubelet",
			Run: func(ctx context.Context, r *Reset) error { return r.Stop(ctx) }},
		{Name: "cleanup", Aliases: []string{"cleanup-node", "cleanupnode"}, Short: "Unmount under the kubelet dir and remove kubestrap's files and directories",
			Run: func(ctx context.Context, r *Reset) error { return r.Cleanup(ctx) }},
	}}
}

// RunAll runs every phase not skipped, the ResetConfiguration's skipPhases (fromConfig) and then
// skip (the --skip-phases given), as "kubestrap reset" does, and prints the closing notes.
func RunAll(ctx context.Context, r *workflow.Runner[*Reset], rs *Reset, fromConfig, skip []string) error {
	if err := r.Run(ctx, rs, workflow.MergeSkip(fromConfig, skip)); err != nil {
		return err
	}
	rs.Finish()
	return nil
}
