# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's digest key: a Secret in ``slipway-system`` that keys object digests and redaction hashes."""

from __future__ import annotations

import base64
import secrets

from ansible_collections.slipway.platform.plugins.module_utils._errors import Conflict
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path

KEY_SECRET = "slipway-digest-key"  # noqa: S105 - a Secret's name, not a password


def hmac_key(client, namespace, create):
    """The key; made (and, when ``create``, stored) on first use. Deleting the Secret re-annotates every object once."""
    found = client.get(api_path("v1", "secrets", namespace, KEY_SECRET), ok_missing=True)
    if found and (found.get("data") or {}).get("key"):
        return base64.b64decode(found["data"]["key"])
    key = secrets.token_bytes(32)
    if create:
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": KEY_SECRET, "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": "slipway"}},
                "data": {"key": base64.b64encode(key).decode("ascii")}}
        try:
            client.request("POST", api_path("v1", "secrets", namespace), body=body)
        except Conflict:  # another delivery made it first: use theirs
            return hmac_key(client, namespace, create=False)
    return key
