//go:build tools

// Package tools pins kwok, which registers simulated nodes and moves their pods to Running/Ready.
// It is a module of its own so that kwok builds with the dependency versions it was released with.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
