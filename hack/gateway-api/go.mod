// Pins the Gateway API release whose standard-channel CRDs (config/crd/standard/*.yaml in the module)
// hack/stack.py installs. Nothing is built from it: the module is only downloaded, so no tools.go.
module slipway.local/gateway-api

go 1.26.0

require sigs.k8s.io/gateway-api v1.6.3
