// Pins the Traefik release the local stack runs as its gateway (hack/stacklib/gateway.py, docs/gateway.md).
// Nothing is built in this module: the pinned module is copied out of the module cache and built with its own
// go.mod and go.sum (they pin Traefik's dependency tree), after the edits gateway.py lists; dynamic-ext/ and
// overlay/ are files that build puts into the copy. No tools.go: a tidy here would need modules the proxy refuses.
module slipway.local/traefik

go 1.26.0

require github.com/traefik/traefik/v3 v3.7.13
