// Command pause is the sandbox ("pause") process of Slipway's real node: it holds the pod's
// namespaces open and does nothing else. It is built with CGO_ENABLED=0 into a static binary
// and wrapped FROM scratch, because nothing can be pulled on the machines the stack runs on.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		// As PID 1 of a shared PID namespace, reap orphaned children.
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
