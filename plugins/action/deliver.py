# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``slipway.platform.deliver``: read each system's ``slipway.yml``, render its templates
with the task's variables (vault included), deliver, show progress and a closing summary table.

With a ``local`` connection (every Slipway inventory) the engine runs in this process; otherwise the module
is shipped to the task's host like any other. Both call the same ``deliver_task`` code."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
import threading
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import split_secrets
from ansible_collections.slipway.platform.plugins.module_utils._security.network import (
    network_baseline,
    with_network_policies,
)
from ansible_collections.slipway.platform.plugins.module_utils._system import read_description
from ansible_collections.slipway.platform.plugins.module_utils._release.showroom import namespace_map
from ansible_collections.slipway.platform.plugins.module_utils._release.showroom import (
    rewritten_description as showroom_description,
)
from ansible_collections.slipway.platform.plugins.plugin_utils._inputs import InputDigests
from ansible_collections.slipway.platform.plugins.plugin_utils._release_display import progress_printer, show_summary
from ansible_collections.slipway.platform.plugins.plugin_utils._render import ManifestRenderer, RenderError
from ansible_collections.slipway.platform.plugins.module_utils._release.deliver_task import (
    DELIVER_SPEC,
    masked_values,
    prepared_systems,
    resolved_on_failure,
    run_delivery,
)

display = Display()

MODULE = "slipway.platform.deliver"
RENDER_ONLY = ("ecosystem_root", "images", "system_tags", "registry", "values", "network_policy", "network_peers")


def image_reference(name, images, registry, tag):
    """The reference an image is delivered by: the build report's (by digest) first, else registry/name:tag."""
    if images.get(name):
        return images[name]
    if not registry:
        raise AnsibleActionFail(f"image {name!r} is not in the build report (images) and no registry is set")
    tag = str(tag or "latest")
    return f"{registry}/{name}@{tag}" if tag.startswith("sha256:") else f"{registry}/{name}:{tag}"


def load_description(root, name):
    try:
        return read_description(root, name)
    except SlipwayError as exc:
        raise AnsibleActionFail(exc.msg) from None


def git_sha(folder):
    try:
        out = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deferred = {}  # system name -> renders it, for the systems the engine renders only if they changed

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        network = None
        try:
            if args.get("rendered") is None:
                started = time.monotonic()
                # only a local run can render later, in this process (a module on another host gets documents)
                args["rendered"], network = self.render(args, task_vars,
                                                        defer=self._connection.transport == "local")
                display.vv(f"slipway: prepared {len(args['rendered'])} systems ({len(self._deferred)} left to the "
                           f"engine, rendered only if changed) in {time.monotonic() - started:.2f}s")
        except AnsibleActionFail as exc:
            return dict(result, failed=True, msg=str(exc.message if hasattr(exc, "message") else exc))
        if network is not None and network.mode != "off":
            for line in network.would_block:
                display.display(f"  slipway: network {network.mode}: enforce blocks {line}")
        for key in RENDER_ONLY:
            args.pop(key, None)
        # the controller's environment says whether this is a CI job, also for a module run on another host
        args["on_failure"] = resolved_on_failure(args.get("on_failure", "fail"), os.environ)
        started = time.monotonic()
        if self._connection.transport == "local":
            outcome = self.deliver_here(args)
        else:
            outcome = self.deliver_by_module(args, task_vars)
        display.vv(f"slipway: the delivery ran for {time.monotonic() - started:.2f}s")
        show_summary(display, outcome)
        result.update(outcome)
        if network is not None:
            result["network_policy"] = network.report()
        return result

    def deliver_here(self, args):
        """Run the engine in this process: what the module would do, without a module process around it."""
        rendered = args.get("rendered")
        # systems rendered here are dicts already: the validator would deep-copy every document to check that
        typed = isinstance(rendered, list) and all(isinstance(system, dict) for system in rendered)
        if isinstance(args.get("systems"), list):  # plain str: deep-copying tagged ones costs 30 ms per 1,000
            args = dict(args, systems=[str(name) for name in args["systems"]])
        validated = ArgumentSpecValidator(DELIVER_SPEC).validate(dict(args, rendered=[]) if typed else args)
        if validated.error_messages:
            return {"failed": True, "msg": "; ".join(validated.error_messages)}
        params = validated.validated_parameters
        if typed:
            params["rendered"] = rendered  # prepared_systems copies it before anything is changed
        hidden = set(validated._no_log_values)  # pylint: disable=protected-access  # the spec's no_log values
        progress = progress_printer(display)

        deferred = None
        if self._deferred:
            from ansible_collections.slipway.platform.plugins.module_utils._release.deferred import DeferredRendering

            deferred = DeferredRendering(self.render_deferred, lambda systems: hidden.update(masked_values(systems)))
        try:
            rendered = prepared_systems(params)
            hidden |= masked_values(rendered)
            outcome = run_delivery(params, rendered, bool(self._task.check_mode), bool(self._task.diff), progress,
                                   deferred)
        except SlipwayError as exc:
            outcome = dict(exc.to_result(), failed=True)
        return remove_values(outcome, hidden)

    def deliver_by_module(self, args, task_vars):
        """Ship the module to the task's host (the API is reached from there) and tail its progress file."""
        # Secret values travel in a no_log option: never logged with the module invocation, masked in output.
        args["rendered"], secret_data = split_secrets(args["rendered"])
        args["secret_data"] = dict(args.get("secret_data") or {}, **secret_data)
        handle, progress_path = tempfile.mkstemp(prefix="slipway-progress-", suffix=".log")
        os.close(handle)
        args["progress_file"] = progress_path
        stop = threading.Event()
        tail = threading.Thread(target=self._tail, args=(progress_path, stop), daemon=True)
        tail.start()
        try:
            outcome = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        finally:
            stop.set()
            tail.join(timeout=5)
            os.unlink(progress_path)
        outcome.pop("invocation", None)  # the rendered documents (secrets included) never reach the output
        return outcome

    def _tail(self, path, stop):
        """Show progress lines as the module writes them. The file is the controller's: a module on another host
        writes its own, and its lines arrive only with the result (``progress``)."""
        position = 0
        while True:
            finished = stop.wait(0.3)
            try:
                with open(path, encoding="utf-8") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                    position = handle.tell()
            except OSError:
                chunk = ""
            for line in chunk.splitlines():
                display.display(f"  slipway: {line}")
            if finished:
                return

    def render(self, args, task_vars, defer=False):
        """``(rendered systems, network plan)``. With ``defer``, a system whose inputs can be digested comes without
        documents and with ``inputs``: the engine renders it (``render_deferred``) only if its inputs changed."""
        root = args.get("ecosystem_root") or task_vars.get("slipway_ecosystem_root")
        names = args.get("systems")
        if not root:
            raise AnsibleActionFail("ecosystem_root (slipway_ecosystem_root) is required to render the systems")
        emptying = bool(args.get("retire")) or boolean(args.get("retire_absent", False), strict=False)
        if not isinstance(names, list) or not (names or emptying):
            raise AnsibleActionFail("systems must be a non-empty list of system names (slipway_systems), unless "
                                    "the delivery only retires systems (retire, retire_absent)")
        self._deferred.clear()
        images, tags = args.get("images") or {}, args.get("system_tags") or {}
        values = args.get("values") or {}
        sha = git_sha(root)  # the ecosystem repository's commit, recorded for every system
        loaded = {str(name): load_description(root, str(name)) for name in names}
        namespaces = self.namespaces(root, loaded, args.get("showroom"))
        renderer = ManifestRenderer(self._templar)  # one template engine for every system, each template compiled once
        descriptions = {}
        for name in names:
            description = loaded[str(name)][1]
            if args.get("showroom"):  # its templates see the showroom's namespaces (system.namespace, namespaces)
                description = showroom_description(description, args["showroom"]["name"])
            descriptions[name] = description

        def described(other):  # a peer as this delivery runs it (in a showroom, in the showroom's namespaces)
            description = read_description(root, other)[1]
            return showroom_description(description, args["showroom"]["name"]) if args.get("showroom") else description

        try:
            network = network_baseline(args.get("network_policy"), args.get("network_peers"), descriptions, described)
        except SlipwayError as exc:
            raise AnsibleActionFail(exc.msg) from None
        # a system whose inputs did not change reuses its last release's objects (the engine decides, from the journal)
        digests = None
        if defer and not args.get("showroom"):
            digests = InputDigests(renderer, task_vars, [args.get("context"), namespaces, network.mode])
        rendered = []
        for name in names:
            path, description = loaded[str(name)][0], descriptions[name]
            system_images = {i["name"]: image_reference(i["name"], images, args.get("registry"), tags.get(name))
                             for i in description.get("images") or []}
            manifests = os.path.join(os.path.dirname(path), description.get("manifests") or "deploy")
            if not os.path.isdir(manifests):
                raise AnsibleActionFail(f"system {name}: manifests folder {manifests} does not exist "
                                        f"(set 'manifests' in {path})")
            system = {"name": name, "namespace": description.get("namespace"),
                      "depends_on": description.get("depends_on") or [], "images": system_images,
                      "health": description.get("health"), "metrics": description.get("metrics"), "git_sha": sha}
            own = {"system": description, "images": system_images, "values": values.get(name) or {}}
            render_system = functools.partial(self._render_system, renderer, network, root, manifests, system,
                                              dict(own, context=args.get("context"), namespaces=namespaces), task_vars)
            inputs = digests.system(manifests, dict(own, network=network.policies.get(name))) if digests else None
            if inputs:
                rendered.append(dict(system, documents=None, inputs=inputs))
                self._deferred[name] = render_system
                continue
            try:
                rendered.append(dict(system, documents=render_system()))
            except (RenderError, SlipwayError) as exc:
                raise AnsibleActionFail(getattr(exc, "msg", str(exc))) from None
        display.vvv(f"slipway: {renderer.compilations} template compilations for {len(rendered) - len(self._deferred)}"
                    f" systems rendered, {len(self._deferred)} deferred")
        return rendered, network

    @staticmethod
    def _render_system(renderer, network, root, manifests, system, own, task_vars):
        """One system's documents, rendered now (its generated network policies added)."""
        documents = renderer.render_folder(system["name"], manifests, root, dict(task_vars, **own))
        return with_network_policies([dict(system, documents=documents)], network)[0]["documents"]

    def render_deferred(self, name):
        """A deferred system rendered when the engine asks (its inputs changed): errors as the engine reports them."""
        try:
            return self._deferred[name]()
        except RenderError as exc:
            raise SlipwayError(str(exc)) from None

    @staticmethod
    def namespaces(root, loaded, showroom):
        """The template variable ``namespaces``: each delivered system, and each one they depend on, -> the
        namespace it runs in here, so that a system names another's Service as ``<name>.{{ namespaces.<name>
        }}.svc``. With ``showroom`` ({name}) they are the showroom's, and the ecosystem's own are noted in it."""
        found = {}
        for name, (_path, description) in loaded.items():
            found[name] = description.get("namespace")
            for other in description.get("depends_on") or []:
                if other not in loaded and isinstance(other, str) and other not in found:
                    found[other] = load_description(root, other)[1].get("namespace")
        if not showroom:
            return found
        try:
            showroom.setdefault("namespaces", sorted({n for n in found.values() if isinstance(n, str)}))
            moved = namespace_map(showroom["name"], showroom["namespaces"])
        except (SlipwayError, KeyError, TypeError) as exc:
            raise AnsibleActionFail(f"showroom: {getattr(exc, 'msg', exc)} (the option showroom needs a name)") \
                from None
        return {name: moved.get(namespace, namespace) for name, namespace in found.items()}
