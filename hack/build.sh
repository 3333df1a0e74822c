#!/usr/bin/env bash
# Builds kubestrap in its release shape: a small front program that carries the component program
# (the monolith a plain `go build ./cmd/kubestrap` makes) embedded, so that commands which do not
# run a component start without initialising the control plane's packages.
#
#   hack/build.sh [-o OUTPUT]           build for GOOS/GOARCH (default: this machine) into OUTPUT
#                                       (default bin/kubestrap)
#   hack/build.sh payload [OS/ARCH...]  only step 1, for each platform (default GOOS/GOARCH); the
#                                       release build's before hook
#
# Step 1 builds the component program into cmd/kubestrap/payload/<os>-<arch>/ with its manifest
# (SHA-256, component names, versions) and kube-apiserver's flag catalog; step 2 builds the front
# with -tags front, which embeds them. GOFLAGS (e.g. -trimpath) applies to both; both are static (CGO_ENABLED=0), as the release builds them.
set -euo pipefail
cd "$(dirname "$0")/.."

host="$(GOOS= GOARCH= go env GOHOSTOS)/$(GOOS= GOARCH= go env GOHOSTARCH)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# payload OS ARCH: step 1 for one platform.
payload() {
  local goos=$1 goarch=$2
  local dir=cmd/kubestrap/payload/$goos-$goarch
  if [[ ! -f cmd/kubestrap/payload_${goos}_${goarch}.go ]]; then
    echo "hack/build.sh: no front for $goos/$goarch (cmd/kubestrap/payload_${goos}_${goarch}.go); build the monolith instead: go build ./cmd/kubestrap" >&2
    exit 1
  fi
  mkdir -p "$dir"
  # Static (no cgo), as goreleaser builds it: the program also runs in the control-plane images
  # (kubestrap images), which carry no libc.
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -o "$dir/kubestrap.tmp" ./cmd/kubestrap
  mv -f "$dir/kubestrap.tmp" "$dir/kubestrap"
  # The metadata is written by a program for this machine built from the same tree: the
  # component program itself unless cross-compiling.
  local meta=$dir/kubestrap
  if [[ $goos/$goarch != "$host" ]]; then
    meta=$tmp/kubestrap-host
    [[ -x $meta ]] || GOOS= GOARCH= go build -o "$meta" ./cmd/kubestrap
  fi
  "$meta" __payload-metadata "$dir/kubestrap" "$dir"
}

case "${1:-}" in
  payload)
    shift
    (($#)) || set -- "$(go env GOOS)/$(go env GOARCH)"
    for platform in "$@"; do
      payload "${platform%/*}" "${platform#*/}"
    done
    ;;
  -o | "")
    out=bin/kubestrap
    if [[ ${1:-} == -o ]]; then out=${2:?"-o needs a file name"}; fi
    payload "$(go env GOOS)" "$(go env GOARCH)"
    # Step 2: the front, static like the release's (goreleaser.yaml sets CGO_ENABLED=0): a
    # dynamically linked front also maps libc and runs the dynamic loader on every command,
    # about 1.2 MiB of peak RSS and a millisecond, and nothing in it needs cgo.
    mkdir -p "$(dirname "$out")"
    CGO_ENABLED=0 go build -tags front -o "$out" ./cmd/kubestrap
    ;;
  *)
    echo "usage: hack/build.sh [-o OUTPUT] | hack/build.sh payload [OS/ARCH...]" >&2
    exit 2
    ;;
esac
