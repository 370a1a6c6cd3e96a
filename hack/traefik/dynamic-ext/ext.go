// Package ext stands in for Traefik's dynamic-configuration extension module.
//
// Traefik's go.mod requires github.com/traefik/traefik/dynamic/ext at a placeholder version and replaces it with
// its folder pkg/config/dynamic/ext; that folder is a module of its own, so it is not in the v3 module's zip and
// the proxy does not serve it. hack/stacklib/gateway.py copies this folder there. The open-source build embeds both
// types empty.
package ext

// HTTP is embedded in Traefik's dynamic.HTTP.
type HTTP struct{}

// Router is embedded in Traefik's dynamic.Router.
type Router struct{}
