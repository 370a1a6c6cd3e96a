"""Stage: the cluster's bootstrap objects: the deliverable namespaces and the deployers' least-privilege RBAC.

The deployers' access rules are not written here: they come from the collection's own generator
(``plugins/module_utils/_security/identity.py``, what ``slipway.platform.deployer_identity`` and
``playbooks/security.yml`` apply to any cluster). That code is plain Python with no dependency outside the standard
library, imported through the collection link ``hack/setup.sh`` makes (made here too when missing), so the stack
still starts on a machine with nothing but python3.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

from stacklib.config import (
    DEPLOYER_CONTEXT,
    DEPLOYER_KINDS,
    DEPLOYER_NAMESPACES,
    DEPLOYER_USER,
    JOURNAL_NAMESPACE,
    LOGS,
    ROOT,
    SHOWROOM_DEPLOYER_CONTEXT,
    SHOWROOM_DEPLOYER_USER,
    SHOWROOM_JOURNAL_NAMESPACE,
    STATE,
    VIEWER_GROUPS,
)
from stacklib.kubeapi import kubectl
from stacklib.proc import step

COLLECTIONS = STATE / "collections"
IDENTITY_MODULE = "ansible_collections.slipway.platform.plugins.module_utils._security.identity"


def collection_module(name: str):
    """A module of this repository's collection (``slipway.platform``), imported through its link."""
    link = COLLECTIONS / "ansible_collections" / "slipway" / "platform"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT)
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    return importlib.import_module(name)


def deployer_objects() -> list[dict]:
    """The local context's deployer and viewers, and the showrooms' deployer, as the collection generates them."""
    identity = collection_module(IDENTITY_MODULE)
    return [
        *identity.declared_deployer_objects(DEPLOYER_CONTEXT, {"kind": "User", "name": DEPLOYER_USER}, DEPLOYER_KINDS,
                                            JOURNAL_NAMESPACE),
        *identity.viewer_objects(DEPLOYER_CONTEXT, VIEWER_GROUPS, DEPLOYER_KINDS),
        # each showroom's namespaces are bound by playbooks/showroom.yml when it admits the showroom
        *identity.journal_deployer_objects(SHOWROOM_DEPLOYER_CONTEXT, {"kind": "User", "name": SHOWROOM_DEPLOYER_USER},
                                           SHOWROOM_JOURNAL_NAMESPACE),
    ]


@step("cluster bootstrap (namespaces, deployer RBAC)")
def ensure_bootstrap() -> str:
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
               for ns in [*DEPLOYER_NAMESPACES, SHOWROOM_JOURNAL_NAMESPACE]]
    objects += deployer_objects()
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}).encode()
    for _attempt in range(2):
        # An etcd that was just restarted under a running API server times the first writes out: try again.
        if kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-", stdin=body,
                   log=LOGS / "bootstrap.log", check=False).returncode == 0:
            break
        time.sleep(3)
    else:
        kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-", stdin=body,
                log=LOGS / "bootstrap.log")
    kinds = "; ".join(f"{namespace}: {', '.join(names)}" for namespace, names in DEPLOYER_KINDS.items())
    return (f"deployer {DEPLOYER_USER!r} (context {DEPLOYER_CONTEXT}) may write {kinds} and its journal in "
            f"{JOURNAL_NAMESPACE}; {SHOWROOM_DEPLOYER_USER!r} its journal in {SHOWROOM_JOURNAL_NAMESPACE} and the "
            f"showrooms'")
