// Build overlay for pkg/middlewares/auth/basic_auth.go (see docs/gateway.md): Traefik's basic and digest
// auth use Containous's go-http-auth fork, which the module proxy does not serve. The gateway never configures
// either middleware; a route that asks for one gets this error instead of an unauthenticated backend.
package auth

import (
	"context"
	"fmt"
	"net/http"

	"github.com/traefik/traefik/v3/pkg/config/dynamic"
)

// NewBasic refuses: basic auth is not part of Slipway's Traefik build.
func NewBasic(_ context.Context, _ http.Handler, _ dynamic.BasicAuth, name string) (http.Handler, error) {
	return nil, fmt.Errorf("middleware %s: basicAuth is not built into Slipway's Traefik (go-http-auth fork unavailable)", name)
}
