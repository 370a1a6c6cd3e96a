// Build overlay for pkg/middlewares/auth/digest_auth.go; see basic_auth.go in this folder for why.
package auth

import (
	"context"
	"fmt"
	"net/http"

	"github.com/traefik/traefik/v3/pkg/config/dynamic"
)

// NewDigest refuses: digest auth is not part of Slipway's Traefik build.
func NewDigest(_ context.Context, _ http.Handler, _ dynamic.DigestAuth, name string) (http.Handler, error) {
	return nil, fmt.Errorf("middleware %s: digestAuth is not built into Slipway's Traefik (go-http-auth fork unavailable)", name)
}
