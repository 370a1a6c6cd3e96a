# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by every module that talks to the Kubernetes API (spec: ``_kube/args.py``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file. When unset and no O(api_url) is given, C($KUBECONFIG) is read,
        then C(~/.kube/config).
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
