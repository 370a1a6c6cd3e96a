"""Stage: ``slipway/jaeger``, the base image of the tracing catalogue entry (catalogue/tracing), on the real node.

Jaeger v2 (an OpenTelemetry collector distribution with Jaeger's storage and query) is built from the module pinned
by hack/jaeger/go.mod (CGO off, into .stack/bin, stamped with its version so a warm ``up`` skips it; the shared
GOCACHE makes a clean clone's build a link), then wrapped ``FROM scratch`` with its licence into the stack's Docker
Engine, where the ops context's image build finds it as a base: nothing is pulled. The catalogue runs on the real
node only, so the image comes with it.
"""

from __future__ import annotations

import shutil

from stacklib.config import BIN, HACK, LOGS, STATE
from stacklib.docker import docker
from stacklib.gobuild import build_go_command, go_command_cached, go_module_dir
from stacklib.proc import step

JAEGER_MODULE = HACK / "jaeger"
JAEGER_VERSION = "v1.76.0"  # the Go module's version of Jaeger v2; keep equal to hack/jaeger/go.mod
JAEGER_IMAGE = f"slipway/jaeger:{JAEGER_VERSION}"
LOG = LOGS / "jaeger-image.log"


def image_current() -> bool:
    labels = docker("image", "inspect", "-f", '{{ index .Config.Labels "org.slipway.version" }}', JAEGER_IMAGE,
                    check=False)
    return labels.returncode == 0 and labels.stdout.decode().strip() == JAEGER_VERSION


@step(f"tracing: image {JAEGER_IMAGE}")
def ensure_jaeger_image() -> str:
    if image_current():
        return "cached"
    built = ""
    if not go_command_cached("jaeger", JAEGER_VERSION):
        stamp = f"-X github.com/jaegertracing/jaeger/internal/version.latestVersion={JAEGER_VERSION}"
        build_go_command("jaeger", JAEGER_MODULE, "github.com/jaegertracing/jaeger/cmd/jaeger", JAEGER_VERSION,
                         ldflags=f"-s -w {stamp}")
        built = "binary built, "
    context = STATE / "build" / "jaeger-image"
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BIN / "jaeger", context / "jaeger")
    shutil.copy2(go_module_dir(JAEGER_MODULE, "github.com/jaegertracing/jaeger") / "LICENSE",
                 context / "LICENSE")
    (context / "Dockerfile").write_text(
        f'FROM scratch\nLABEL org.slipway.version="{JAEGER_VERSION}"\n'
        "COPY jaeger /jaeger\nCOPY LICENSE /LICENSE\n")
    docker("build", "-q", "-t", JAEGER_IMAGE, str(context), log=LOG)
    shutil.rmtree(context)
    return f"{built}imaged"


def components() -> list[tuple[str, bool, str]]:
    return [("tracing image", image_current(), f"{JAEGER_IMAGE} (catalogue/tracing's base)")]
