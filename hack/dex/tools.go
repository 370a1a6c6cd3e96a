//go:build tools

// Package tools pins dex, the OIDC identity service the local stack runs so people log in with SSO.
// dex publishes no Go module version newer than v2.13.0+incompatible (its go.mod lacks the /v2 suffix), so the
// pin is the pseudo-version of the v2.45.1 tag's commit: the first release whose static users carry groups.
package tools

import _ "github.com/dexidp/dex/cmd/dex"
