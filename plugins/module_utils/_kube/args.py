# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kube connection options every API-talking module accepts (documented by ``slipway.platform.kube``).

The kubeconfig context is ``kube_context``: ``context`` is the Slipway delivery context in every module.
"""

from __future__ import annotations

KUBE_CONNECTION_SPEC = {
    "kubeconfig": {"type": "path"},
    "kube_context": {"type": "str"},
    "api_url": {"type": "str"},
    "ca_cert": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path"},
    "api_token": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "request_timeout": {"type": "float", "default": 30.0},
}

CONNECTION_KEYS = tuple(KUBE_CONNECTION_SPEC)


def connection_params(params):
    """The connection subset of a module's parameters."""
    return {key: params.get(key) for key in CONNECTION_KEYS}
