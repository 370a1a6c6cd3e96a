# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a delivery is asked to do (:class:`Options`), what it tracks per system (:class:`SystemRun`), who runs it."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._ci.detect import detect
from ansible_collections.slipway.platform.plugins.module_utils._kube.apply import DEFAULT_RECLAIM
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import NAMESPACE


class DetailLine(str):
    """A progress line worth showing only when asked for more (``-v``): one per object written."""


@dataclass
class Options:
    context: str
    check_mode: bool = False
    diff: bool = False
    wait: bool = True
    wait_timeout: float = 300.0
    concurrency: int = 8
    prune: bool = True
    force_conflicts: bool = False
    reclaim_managers: tuple = DEFAULT_RECLAIM
    lock_timeout: float = 120.0
    lock_duration: int = 30
    holder: str | None = None
    journal_namespace: str = NAMESPACE
    history_max: int = 20  # releases kept per context (history.py); 0 keeps them all
    confirmed: bool = False
    retire: tuple = ()  # systems to take out of the context: their objects pruned, gone from the release
    retire_absent: bool = False  # retire every recorded system this delivery does not deliver
    prometheus_url: str | None = None  # where metric gates ask (the context's Prometheus)
    showroom: dict | None = None  # a showroom's name, branch, URL...: recorded with each of its releases


@dataclass
class SystemRun:
    system: object
    plans: list = field(default_factory=list)
    prune: list = field(default_factory=list)  # [(resource, live)]
    result: str = "pending"
    reason: str = ""
    details: list = field(default_factory=list)
    seconds: float = 0.0
    pruned: list = field(default_factory=list)
    health: dict | None = None  # {state, reason, gates}; None while its gates (if any) have not been considered

    @property
    def changed(self):
        return any(p.changed for p in self.plans) or bool(self.prune)


def default_holder():
    job = detect(os.environ)
    who = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"
    return f"{who} ci {job.label()}" if job else who


def actor(holder):
    """Who delivered, for the journal: the holder, user and host, and the CI job (its URL and build number)."""
    job = detect(os.environ)
    return {"holder": holder, "user": getpass.getuser(), "host": socket.gethostname(),
            "ci_job": job.label() if job else None, "ci": job.as_dict() if job else None}
