# SPDX-License-Identifier: GPL-3.0-or-later
"""``python3 -m shop_worker [--once | --check-heartbeat SECONDS]``; configured by environment:
BACKEND_URL, POLL_SECONDS, HEARTBEAT_FILE, and for the bus NATS_URL, NATS_USER, NATS_PASSWORD,
NATS_SUBJECT."""

import argparse
import os
import signal
import sys

from shop_worker.bus import Subscription
from shop_worker.client import Backend
from shop_worker.worker import consume, heartbeat_age, run


def main(argv=None):
    parser = argparse.ArgumentParser(prog="shop_worker")
    parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    parser.add_argument("--check-heartbeat", type=float, metavar="SECONDS",
                        help="exit 0 when the last good cycle is younger than SECONDS (probes)")
    args = parser.parse_args(argv)
    heartbeat = os.environ.get("HEARTBEAT_FILE", "/tmp/heartbeat")
    if args.check_heartbeat is not None:
        age = heartbeat_age(heartbeat)
        return 0 if age is not None and age < args.check_heartbeat else 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    backend = Backend(os.environ.get("BACKEND_URL", "http://backend:8080"))
    interval = float(os.environ.get("POLL_SECONDS", "2"))
    log = lambda line: print(line, flush=True)  # noqa: E731
    if os.environ.get("NATS_URL") and not args.once:
        # the event bus (catalogue/nats): orders announced on NATS_SUBJECT are fulfilled at once
        subject = os.environ.get("NATS_SUBJECT", "shop.orders.new")
        bus = Subscription(os.environ["NATS_URL"], subject,
                           os.environ.get("NATS_USER"), os.environ.get("NATS_PASSWORD"))
        return consume(backend, bus, interval, heartbeat, log)
    return run(backend, interval, heartbeat, log, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
