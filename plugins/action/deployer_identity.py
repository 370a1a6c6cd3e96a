# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``slipway.platform.deployer_identity``: render the systems exactly as ``deliver`` does, and
hand the module only what identifies each document (apiVersion, kind, name, namespace) - never a value."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# Its rendering is reused as is, so the kinds judged are exactly those a delivery would apply.
from ansible_collections.slipway.platform.plugins.action.deliver import ActionModule as DeliverAction

MODULE = "slipway.platform.deployer_identity"
# Images do not change which kinds a system delivers: a placeholder registry renders systems not built yet.
PLACEHOLDER_REGISTRY = "registry.invalid"


def identifying(document):
    content = document.get("content")
    if not isinstance(content, dict):
        return None
    metadata = content.get("metadata") or {}
    return {"file": document.get("file"),
            "content": {"apiVersion": content.get("apiVersion"), "kind": content.get("kind"),
                        "metadata": {k: metadata[k] for k in ("name", "namespace") if k in metadata}}}


class ActionModule(DeliverAction):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = ActionBase.run(self, tmp, task_vars)
        args = dict(self._task.args)
        if args.get("rendered") is None:
            render_args = dict(args, registry=PLACEHOLDER_REGISTRY, network_peers=None)
            try:
                rendered, _network = self.render(render_args, task_vars)
            except AnsibleActionFail as exc:
                return dict(result, failed=True, msg=str(exc.message if hasattr(exc, "message") else exc))
            args["rendered"] = [{"name": system["name"], "namespace": system["namespace"],
                                 "documents": [d for d in map(identifying, system["documents"]) if d]}
                                for system in rendered]
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        return result
