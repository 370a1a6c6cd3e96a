#!/usr/bin/env python3
"""One real node for the local stack, alone: a kubelet on its own containerd, so delivered pods really run.

    hack/realnode.py up | down | status      (the whole stack: hack/stack.py up --real-node)

``up`` needs a running control plane. ``dns`` is the node's cluster DNS process, which ``up`` starts.
This file is the command line; the node's parts are in hack/stacklib/realnode/ (docs/real-node.md).
"""

from __future__ import annotations

import sys

from stacklib.proc import print_components, run_steps, stack_lock
from stacklib.realnode.dns import serve_dns
from stacklib.realnode.down import down
from stacklib.realnode.probes import components
from stacklib.realnode.up import up


def main(argv: list[str]) -> int:
    """``hack/realnode.py up|down|status``: the real node alone (the control plane must be up for ``up``)."""
    if argv == ["dns"]:
        serve_dns()
    if len(argv) != 1 or argv[0] not in ("up", "down", "status"):
        print("usage: hack/realnode.py up|down|status  (the whole stack: hack/stack.py up --real-node)")
        return 2
    if argv[0] == "status":
        return print_components(components())
    with stack_lock():  # the same lock as hack/stack.py up/down
        return run_steps(up if argv[0] == "up" else down)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
