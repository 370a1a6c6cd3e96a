// Command coredns is CoreDNS with only the plugins a Slipway cluster's DNS needs: names of Services and pods from
// the Kube API (kubernetes), health and readiness endpoints, a cache, error logging and forwarding of other names
// upstream. Fewer plugins than the upstream build make a far smaller build on the 2-core machines here.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order in which the plugins handle a query (a subset of upstream's plugin.cfg, in its order).
var directives = []string{"ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes", "forward"}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
