# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the backend: ``python3 -m shop_backend`` listens on $PORT (default 8080)."""

import os
import signal
import sys

from shop_backend.server import Server
from shop_backend.tracing import Tracer


def main():
    port = int(os.environ.get("PORT", "8080"))
    server = Server(("0.0.0.0", port), log=lambda line: print(line, file=sys.stderr, flush=True),
                    tracer=Tracer.from_environment("backend"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # SystemExit ends serve_forever
    print(f"shop-backend listening on :{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
