package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	leasesapi "github.com/containerd/containerd/api/services/leases/v1"
	containerdtypes "github.com/containerd/containerd/api/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Namespace is containerd's namespace for the images and containers of the CRI plugin, which the
// kubelet uses.
const Namespace = "k8s.io"

// DefaultContainerdSocket is containerd's default address.
const DefaultContainerdSocket = "/run/containerd/containerd.sock"

// containerd's metadata keys (its namespaces and leases packages): which namespace a call is in,
// and the lease that keeps half-imported content from its garbage collector.
const (
	namespaceHeader = "containerd-namespace"
	leaseHeader     = "containerd-lease"
	gcExpireLabel   = "containerd.io/gc.expire"
)

// chunk is the most content sent in one write message, well below gRPC's default message limit.
const chunk = 1 << 20

// Import puts every image of l into containerd at socket, in the k8s.io namespace, through
// containerd's content, leases and images services: the same calls `ctr images import` makes,
// with no registry involved. Content already in the store is not sent again. Each imported
// image's name is printed to out.
func Import(ctx context.Context, socket string, l *Layout, out io.Writer) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", socket, err)
	}
	defer conn.Close()
	return importInto(ctx, conn, socket, l, out)
}

// importInto is Import over an open connection to containerd's socket.
func importInto(ctx context.Context, conn *grpc.ClientConn, socket string, l *Layout, out io.Writer) error {
	ctx = metadata.AppendToOutgoingContext(ctx, namespaceHeader, Namespace)

	// A lease for the duration of the import: content written before the image that references
	// it exists would otherwise be collected.
	leases := leasesapi.NewLeasesClient(conn)
	lease, err := leases.Create(ctx, &leasesapi.CreateRequest{
		ID:     fmt.Sprintf("kubestrap-images-import-%d", time.Now().UnixNano()),
		Labels: map[string]string{gcExpireLabel: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
	})
	if err != nil {
		return fmt.Errorf("containerd at %s: creating a lease: %w (kubestrap imports images through containerd's own API: is containerd listening there?)", socket, err)
	}
	defer func() {
		_, _ = leases.Delete(context.WithoutCancel(ctx), &leasesapi.DeleteRequest{ID: lease.Lease.ID})
	}()
	ctx = metadata.AppendToOutgoingContext(ctx, leaseHeader, lease.Lease.ID)

	content := contentapi.NewContentClient(conn)
	imgs := imagesapi.NewImagesClient(conn)
	for _, m := range l.Index.Manifests {
		name := m.Annotations[AnnotationImageName]
		if name == "" {
			name = m.Annotations[ocispec.AnnotationRefName]
		}
		if name == "" {
			return fmt.Errorf("manifest %s has no image name (annotation %s)", m.Digest, AnnotationImageName)
		}
		raw, err := l.Blob(m.Digest)
		if err != nil {
			return err
		}
		var man ocispec.Manifest
		if err := json.Unmarshal(raw, &man); err != nil {
			return fmt.Errorf("image %s: manifest %s: %w", name, m.Digest, err)
		}
		// Children first; the manifest carries containerd's GC references to them, so once the
		// image exists nothing it needs can be collected.
		for _, d := range append([]ocispec.Descriptor{man.Config}, man.Layers...) {
			if err := writeBlob(ctx, content, l, d, nil); err != nil {
				return fmt.Errorf("image %s: %w", name, err)
			}
		}
		refs := map[string]string{"containerd.io/gc.ref.content.config": man.Config.Digest.String()}
		for i, d := range man.Layers {
			refs[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", i)] = d.Digest.String()
		}
		if err := writeBlob(ctx, content, l, m, refs); err != nil {
			return fmt.Errorf("image %s: %w", name, err)
		}
		img := &imagesapi.Image{Name: name, Target: &containerdtypes.Descriptor{
			MediaType: m.MediaType, Digest: m.Digest.String(), Size: m.Size,
		}}
		if _, err := imgs.Create(ctx, &imagesapi.CreateImageRequest{Image: img}); err != nil {
			if status.Code(err) != codes.AlreadyExists {
				return fmt.Errorf("image %s: creating it in containerd: %w", name, err)
			}
			if _, err := imgs.Update(ctx, &imagesapi.UpdateImageRequest{Image: img}); err != nil {
				return fmt.Errorf("image %s: updating it in containerd: %w", name, err)
			}
		}
		fmt.Fprintf(out, "[images] Imported %s (%s)\n", name, m.Digest)
	}
	return nil
}

// writeBlob sends one blob to containerd's content store unless it is there already, labelled
// with labels, and lets containerd verify its size and digest on commit.
func writeBlob(ctx context.Context, content contentapi.ContentClient, l *Layout, d ocispec.Descriptor, labels map[string]string) error {
	if _, err := content.Info(ctx, &contentapi.InfoRequest{Digest: d.Digest.String()}); err == nil {
		if len(labels) > 0 {
			// Present from an earlier import: make sure it carries the GC references.
			info := &contentapi.Info{Digest: d.Digest.String(), Labels: labels}
			var paths []string
			for k := range labels {
				paths = append(paths, "labels."+k)
			}
			if _, err := content.Update(ctx, &contentapi.UpdateRequest{Info: info, UpdateMask: fieldMask(paths)}); err != nil {
				return fmt.Errorf("labelling blob %s: %w", d.Digest, err)
			}
		}
		return nil
	} else if status.Code(err) != codes.NotFound {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	rc, err := l.Open(d.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	wc, err := content.Write(ctx)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	send := func(req *contentapi.WriteContentRequest) (*contentapi.WriteContentResponse, error) {
		if err := wc.Send(req); err != nil {
			return nil, err
		}
		return wc.Recv()
	}
	ref := "kubestrap-import-" + d.Digest.Encoded()
	resp, err := send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_STAT, Ref: ref, Total: d.Size, Expected: d.Digest.String()})
	if err != nil {
		if status.Code(err) == codes.AlreadyExists {
			return nil
		}
		return fmt.Errorf("blob %s: starting the write: %w", d.Digest, err)
	}
	// A write left over from an interrupted import resumes where it stopped.
	offset := resp.Offset
	if offset > 0 {
		if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
			return fmt.Errorf("blob %s: %w", d.Digest, err)
		}
	}
	buf := make([]byte, chunk)
	for {
		n, rerr := io.ReadFull(rc, buf)
		if n > 0 {
			resp, err := send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_WRITE, Offset: offset, Data: buf[:n]})
			if err != nil {
				return fmt.Errorf("blob %s: writing at %d: %w", d.Digest, offset, err)
			}
			if resp.Offset != offset+int64(n) {
				return fmt.Errorf("blob %s: containerd is at offset %d after writing up to %d", d.Digest, resp.Offset, offset+int64(n))
			}
			offset = resp.Offset
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("blob %s: reading it: %w", d.Digest, rerr)
		}
	}
	if _, err := send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_COMMIT, Offset: offset, Total: d.Size,
		Expected: d.Digest.String(), Labels: labels}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("blob %s: committing it: %w", d.Digest, err)
	}
	return wc.CloseSend()
}

func fieldMask(paths []string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
