module slipway.local/traefik

go 1.26.0

require github.com/traefik/traefik/v3 v3.7.13

// Traefik's own replace directive (a dependency's replaces do not apply here): its extension module lives in its
// repository, not on the proxy; gorilla/mux is Containous's fork. The go-http-auth fork is not on the proxy: see
// README.md (build overlay).
replace github.com/traefik/traefik/dynamic/ext => ./dynamic-ext

replace github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59

exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible
