# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by every module that talks to the Kubernetes API (spec: ``_kube/args.py``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file. When unset and no O(api_url) is given, every file in C($KUBECONFIG) (separated
        by C(:)) is read and merged as C(kubectl) merges them (the first file that names a cluster, user or context
        wins it; C(current-context) comes from the first file that has one); without C($KUBECONFIG),
        C(~/.kube/config). With none of them, in a pod (C(KUBERNETES_SERVICE_HOST) set), the pod's service account
        is used (its token is re-read when it rotates).
      - A user may authenticate with a client certificate, C(token), C(tokenFile) (re-read when the API server
        rejects the token, so a rotated token is picked up) or an C(exec) credential plugin
        (C(client.authentication.k8s.io/v1) or C(v1beta1), as EKS, GKE, AKS and C(kubelogin) write them). The
        plugin runs without a terminal (C(interactiveMode) C(Always) is refused), once per module run; its credential
        is kept until its C(expirationTimestamp) and the plugin runs again when the API server rejects it. A
        missing plugin fails with its C(installHint), a failing one with its stderr. C(auth-provider) is refused
        with the exec plugin that replaces it.
      - A cluster's C(proxy-url) (C(http), C(https), or C(socks5) with PySocks installed) is used; without one,
        C(HTTPS_PROXY) and C(NO_PROXY) apply (never to loopback addresses). C(tls-server-name) is honoured.
      - An explicit O(api_url), O(ca_cert), O(client_cert), O(client_key) or O(api_token) beats the kubeconfig.
    type: path
  kube_context:
    description:
      - The kubeconfig context to use; defaults to the kubeconfig's C(current-context).
      - Named so because C(context) is the Slipway delivery context in every module.
    type: str
  api_url:
    description: The API server URL, for example C(https://127.0.0.1:6443).
    type: str
  ca_cert:
    description: Path to the CA certificate that signed the API server's certificate.
    type: path
  client_cert:
    description: Path to a client certificate (PEM) for TLS client authentication.
    type: path
  client_key:
    description: Path to the key of O(client_cert).
    type: path
  api_token:
    description: A bearer token. Never logged.
    type: str
  validate_certs:
    description: Verify the API server's certificate. Leave true outside throw-away clusters.
    type: bool
    default: true
  request_timeout:
    description: Seconds one API request may take (connecting takes at most 5 of them).
    type: float
    default: 30.0
attributes:
  action_group:
    description:
      - Use C(group/slipway.platform.kube) in C(module_defaults) to set the connection once for every module that
        talks to the Kube API.
    support: full
    membership:
      - slipway.platform.kube
"""
