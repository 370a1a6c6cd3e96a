# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the modules that build, push, pull and run images (spec: ``_image/args.py``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ecosystem_root:
    description:
      - The folder holding the systems, one sub-folder per system with its C(slipway.yml)
        (the inventory's C(slipway_ecosystem_root)).
    type: path
    required: true
  systems:
    description:
      - Names of the systems whose images are handled (the inventory's C(slipway_systems)).
    type: list
    elements: str
    required: true
  registry:
    description:
      - The context's registry as C(host[:port]), for example C(127.0.0.1:5001) (C(slipway_registry)).
      - Loopback registries are spoken to over HTTP, as the Docker Engine does; others over HTTPS.
    type: str
    required: true
  registry_username:
    description: User for the registry (C(slipway_registry_username)); unset for an anonymous registry.
    type: str
  registry_password:
    description: Password of O(registry_username) (C(slipway_registry_password), from the vault). Never logged.
    type: str
  registry_timeout:
    description: Seconds one registry API request may take.
    type: float
    default: 10.0
  docker_host:
    description: The Docker Engine to use, for example C(unix:///run/docker.sock); defaults to C($DOCKER_HOST).
    type: str
attributes:
  action_group:
    description: Use C(group/slipway.platform.image) in C(module_defaults) to set the registry and engine once.
    support: full
    membership:
      - slipway.platform.image
requirements:
  - Docker SDK for Python (C(docker)) on the host the module runs on, and a Docker Engine it can reach.
"""
