// Package ext stands in for Traefik's dynamic-configuration extension module.
//
// Traefik's go.mod requires github.com/traefik/traefik/dynamic/ext at a placeholder version and replaces it with a
// folder of its own repository; that folder is a separate module, so it is not in the v3 module's zip and the proxy
// does not serve it. Replace directives of a dependency do not apply to us, so hack/traefik/go.mod replaces it with
// this folder. The open-source build embeds both types empty.
package ext

// HTTP is embedded in Traefik's dynamic.HTTP.
type HTTP struct{}

// Router is embedded in Traefik's dynamic.Router.
type Router struct{}
