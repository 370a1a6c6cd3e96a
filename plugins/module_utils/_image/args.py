# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry and engine options the image modules share (documented by ``slipway.platform.registry``)."""

from __future__ import annotations

REGISTRY_CONNECTION_SPEC = {
    "registry": {"type": "str", "required": True},
    "registry_username": {"type": "str"},
    "registry_password": {"type": "str", "no_log": True},
    "registry_timeout": {"type": "float", "default": 10.0},
    "docker_host": {"type": "str"},
}

SYSTEMS_SPEC = {
    "ecosystem_root": {"type": "path", "required": True},
    "systems": {"type": "list", "elements": "str", "required": True},
}


def registry_auth(params):
    """The ``auth_config`` for pushes and pulls, or None for an anonymous registry."""
    if params.get("registry_username") is None:
        return None
    return {"username": params["registry_username"], "password": params.get("registry_password") or "",
            "serveraddress": params["registry"]}
