//go:build tools

// Package tools pins kube-router, whose network policy controller (iptables + ipset) enforces NetworkPolicies on
// the stack's real node. Only its firewall runs: the routes, the service proxy and BGP stay off.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
