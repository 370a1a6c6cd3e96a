#!/bin/sh
# The cluster DNS image: CoreDNS built from its Go module (this folder pins it, main.go picks the plugins), static,
# FROM scratch, pushed to the local stack's registry. Prints the image reference (by digest).
# Cached by the content of go.mod, go.sum and main.go: a second run builds and pushes nothing.
#   hack/coredns/image.sh            (needs the stack: source .stack/env first)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
state=${SLIPWAY_STACK_DIR:-$here/../../.stack}
registry=${SLIPWAY_REGISTRY:-127.0.0.1:5001}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)
version=$(sed -n 's/^require github.com\/coredns\/coredns \(v[^ ]*\)$/\1/p' "$here/go.mod")
image="$registry/slipway/coredns:$version-$key"
work="$state/coredns"
mkdir -p "$work"
if [ ! -x "$work/coredns-$key" ]; then
    (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$work/coredns-$key.tmp" .) >&2
    mv "$work/coredns-$key.tmp" "$work/coredns-$key"
fi
if ! docker manifest inspect --insecure "$image" >/dev/null 2>&1; then
    cp "$work/coredns-$key" "$work/coredns"
    printf 'FROM scratch\nCOPY coredns /coredns\nUSER 65532:65532\nEXPOSE 53 53/udp\nENTRYPOINT ["/coredns"]\n' \
        > "$work/Dockerfile"
    docker build -q -t "$image" "$work" >&2
    docker login -u slipway --password-stdin "$registry" < "$state/secrets/registry-password" >/dev/null 2>&1
    docker push -q "$image" >&2
fi
digest=$(docker inspect --format '{{index .RepoDigests 0}}' "$image" 2>/dev/null || true)
echo "${digest:-$image}"
