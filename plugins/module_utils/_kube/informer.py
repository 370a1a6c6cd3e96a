# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A live copy of one collection (a kind in a namespace): one LIST, then a watch that keeps it current.

The watch resumes from the last resourceVersion it saw when the server ends it or the connection drops; a 410
Gone (that version is compacted away) lists again. While watching fails for another reason (a proxy that cuts
long requests, an identity allowed to list but not to watch), the copy is kept by listing every ``interval``
seconds for a while (``FALLBACK_SECONDS``), then the watch is tried again.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import TRANSPORT_ERRORS

WATCH_SECONDS = 60  # the server ends each watch after this; resuming costs one request
FALLBACK_SECONDS = 10.0  # how long to list instead of watching after a watch failed for a reason other than 410
MAX_BACKOFF = 5.0
GONE = 410


class Gone(Exception):
    """The watch's resourceVersion is too old (410 Gone): the collection must be listed again."""


class Informer:
    """The objects of the collection ``path`` by name, current to within a watch event.

    ``on_change()`` is called (from the informer's thread) after every change. :meth:`start` lists in the
    caller's thread, so a collection that cannot be read fails there with the API's error.
    """

    def __init__(self, client, path, on_change, interval=0.5, watch_seconds=WATCH_SECONDS, sleep=time.sleep,
                 monotonic=time.monotonic):
        self.client = client
        self.path = path
        self.on_change = on_change
        self.interval = interval
        self.watch_seconds = watch_seconds
        self._sleep, self._monotonic = sleep, monotonic
        self._items = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watch = None
        self._thread = None
        self.resource_version = None
        self.error = None  # a failure the copy cannot recover from (the collection can no longer be listed)
        self.lists = 0
        self.watches = 0  # watch requests, the first and every resumption
        self.fallbacks = 0  # times the watch failed and listing took over for a while

    def items(self):
        """A copy of the current objects by name (the objects themselves are shared: do not change them)."""
        with self._lock:
            return dict(self._items)

    def start(self):
        self.relist()
        self._thread = threading.Thread(target=self._run, name=f"slipway-watch {self.path}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.stop()

    def join(self, timeout):
        if self._thread is not None:
            self._thread.join(timeout)

    def relist(self):
        body = self.client.get(self.path)
        items = {item["metadata"]["name"]: item for item in body.get("items") or []}
        with self._lock:
            self._items = items
            self.resource_version = (body.get("metadata") or {}).get("resourceVersion")
            self.lists += 1
        self.on_change()

    def _run(self):
        failures = 0
        fallback_until = 0.0
        while not self._stop.is_set():
            listing = self._monotonic() < fallback_until
            if listing or not self.resource_version:
                try:
                    self.relist()
                except SlipwayError as exc:
                    if not self._stop.is_set():
                        self.error = exc  # the collection cannot be read any more: the waiter reports it
                        self.on_change()
                    return
                if listing:
                    self._stop.wait(self.interval)
                    continue
            began = self._monotonic()
            try:
                self._follow()
                failures = 0
                if self._monotonic() - began < 1.0:  # ended at once (a proxy that cuts it?): no busy loop
                    self._stop.wait(self.interval)
            except Gone:
                self.resource_version = None  # compacted away: list again, then watch from there
            except SlipwayError:  # the server refuses the watch: list for a while, then try again
                fallback_until = self._monotonic() + FALLBACK_SECONDS
                self.fallbacks += 1
            except (ValueError, *TRANSPORT_ERRORS):  # a dropped connection, a cut line: resume where it was
                if self._stop.is_set():
                    return
                failures += 1
                if failures > 2:  # resuming keeps failing: list for a while instead
                    fallback_until = self._monotonic() + FALLBACK_SECONDS
                    self.fallbacks += 1
                self._stop.wait(min(self.interval * 2 ** failures, MAX_BACKOFF))

    def _follow(self):
        """One watch from the current resourceVersion until the server ends it; raises :class:`Gone` on 410."""
        query = {"resourceVersion": self.resource_version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(self.watch_seconds)}
        try:
            watch = self.client.watch(self.path, query, timeout=self.watch_seconds + 10)
        except SlipwayError as exc:
            if exc.details.get("status") == GONE:
                raise Gone() from None
            raise
        self._watch = watch
        self.watches += 1
        try:
            if self._stop.is_set():
                return
            for event in watch:
                self._apply(event)
        finally:
            self._watch = None
            watch.close()

    def _apply(self, event):
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == GONE:
                raise Gone()
            raise SlipwayError(f"watch of {self.path}: {obj.get('message', 'error')}", status=obj.get("code"))
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            name = obj["metadata"]["name"]
            with self._lock:
                if kind == "DELETED":
                    self._items.pop(name, None)
                else:
                    self._items[name] = obj
                self.resource_version = version or self.resource_version
            self.on_change()
        elif version:  # BOOKMARK: nothing changed up to this version
            self.resource_version = version
