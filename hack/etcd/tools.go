//go:build tools

// Package tools pins the etcd server the local stack runs. Debian's etcd 3.4.23 predates watch progress
// requests (3.4.31 / 3.5.13), which the API server needs for streaming list-watch and consistent reads.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
