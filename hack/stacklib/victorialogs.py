"""Stage: ``slipway/victorialogs``, the base image of the logs catalogue entry (catalogue/logs), on the real node.

VictoriaLogs' server (``app/victoria-logs``) and its agent (``app/vlagent``, whose ``-kubernetesCollector`` tails
the node's container logs) are built from the module pinned by hack/victorialogs/go.mod (CGO off, into
.stack/bin, stamped with the version and the agent's one edit so a warm ``up`` skips them; the shared GOCACHE
makes a clean clone's build a link), then wrapped ``FROM scratch`` with the licence into the stack's Docker Engine,
where the ops context's image build finds it as a base: nothing is pulled. The catalogue runs on the real node
only, so the image comes with it.

The edit: vlagent finds its node by reading its own pod, named by the hostname; in the host's network (needed
here: the local API server listens on the node's loopback only) the hostname is the machine's, so the agent asks
for ``POD_NAME`` (the downward API) first. The module's code is copied out of the module cache and edited there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time

from stacklib.config import BIN, HACK, LOGS, STATE
from stacklib.docker import docker
from stacklib.gobuild import edit_copied_source, go_command_cached, go_env, go_module_dir, require_go
from stacklib.proc import run, say, step

MODULE = HACK / "victorialogs"
MODULE_PATH = "github.com/VictoriaMetrics/VictoriaLogs"
VERSION = "v1.52.1"  # keep equal to hack/victorialogs/go.mod
IMAGE = f"slipway/victorialogs:{VERSION}"
LOG = LOGS / "victorialogs-image.log"
BUILD = STATE / "build" / "victorialogs"

AGENT_EDITS = {
    "app/vlagent/kubernetescollector/kubernetes.go": [
        ("\tpodName, err := os.Hostname()\n",
         "\t// Slipway: a pod in the host's network has the host's name; the downward API gives its own.\n"
         "\tpodName, err := os.Getenv(\"POD_NAME\"), error(nil)\n"
         "\tif podName == \"\" {\n"
         "\t\tpodName, err = os.Hostname()\n"
         "\t}\n"),
    ],
}
COMMANDS = {  # command: (package folder in the module, edits applied to it)
    "victoria-logs": ("app/victoria-logs", {}),
    "vlagent": ("app/vlagent", AGENT_EDITS),
}


def stamp(edits: dict) -> str:
    """The version, plus a digest of the edits when there are any: a changed edit rebuilds."""
    if not edits:
        return VERSION
    return f"{VERSION} {hashlib.sha256(json.dumps(edits, sort_keys=True).encode()).hexdigest()[:12]}"


def image_version() -> str:
    return " ".join([VERSION, *(stamp(edits).split()[1] for _, edits in COMMANDS.values() if edits)])


def image_current() -> bool:
    labels = docker("image", "inspect", "-f", '{{ index .Config.Labels "org.slipway.version" }}', IMAGE, check=False)
    return labels.returncode == 0 and labels.stdout.decode().strip() == image_version()


def prepare_source():
    """A writable copy of the pinned module's code in .stack/build with the edits applied, built with the module's
    own go.mod and go.sum (they pin its dependencies); Go refuses overlays of files in the module cache."""
    pristine = go_module_dir(MODULE, MODULE_PATH)
    if BUILD.exists():
        shutil.rmtree(BUILD)
    BUILD.mkdir(parents=True)
    for kept in ("go.mod", "go.sum", "LICENSE", "app", "lib"):
        copy = shutil.copytree if (pristine / kept).is_dir() else shutil.copy2
        copy(pristine / kept, BUILD / kept)
    edit_copied_source(BUILD, AGENT_EDITS, f"VictoriaLogs {VERSION}", f"AGENT_EDITS of {__file__}")
    return BUILD


def build(command: str, folder: str, edits: dict, source) -> None:
    require_go()
    BIN.mkdir(parents=True, exist_ok=True)
    begin = time.monotonic()
    version_stamp = f"-X 'github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version={command}-{VERSION}'"
    run(["go", "build", "-trimpath", f"-ldflags=-s -w {version_stamp}", "-o", str(BIN / command), f"./{folder}"],
        log=LOGS / "go-build.log", cwd=source, env=go_env())
    (BIN / f"{command}.VERSION").write_text(stamp(edits))
    say(f"  built {command} {VERSION} ({time.monotonic() - begin:.0f}s)")


@step(f"logs: image {IMAGE}")
def ensure_victorialogs_image() -> str:
    if image_current():
        return "cached"
    source = prepare_source()
    built = []
    for command, (folder, edits) in COMMANDS.items():
        if not go_command_cached(command, stamp(edits)):
            build(command, folder, edits, source)
            built.append(command)
    context = BUILD / "image"
    context.mkdir(parents=True, exist_ok=True)
    for command in COMMANDS:
        shutil.copy2(BIN / command, context / command)
    shutil.copy2(source / "LICENSE", context / "LICENSE")
    (context / "Dockerfile").write_text(
        f'FROM scratch\nLABEL org.slipway.version="{image_version()}"\n'
        + "".join(f"COPY {command} /{command}\n" for command in COMMANDS) + "COPY LICENSE /LICENSE\n")
    docker("build", "-q", "-t", IMAGE, str(context), log=LOG)
    shutil.rmtree(BUILD)
    return f"built {', '.join(built)}, imaged" if built else "imaged"


def components() -> list[tuple[str, bool, str]]:
    return [("logs image", image_current(), f"{IMAGE} (catalogue/logs's base)")]
