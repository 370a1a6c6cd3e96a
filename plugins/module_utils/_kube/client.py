# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small, thread-safe Kubernetes API client on one pooled urllib3 connection manager.

Only this package talks to the API. Every failure becomes a :class:`SlipwayError` that names the request,
the HTTP status, the server's reason and what to check; certificates and tokens never appear in messages.

An API server that goes away after it has answered (a restart, an upgrade, a crash) is a transient fault: with
``outage_grace`` set, a request that cannot reach it, or that it refuses while it is not ready (a fresh server
answers 403 before its RBAC caches are loaded, 503 or 429 under a restart), waits for ``/readyz`` within the grace
and is sent again, when sending it again is safe. A server never reached in this run is a final fault (a wrong
address or CA): it fails at once.

A 429 (API Priority and Fairness: too many requests) is not a fault: the server did not process the request, so it
goes again after the server's ``Retry-After``, while the client lowers its requests in flight (``throttle.py``).
Readiness watches (:meth:`KubeClient.watch`) are long-running requests on connections of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
from urllib.parse import quote, urlencode

from ansible_collections.slipway.platform.plugins.module_utils._errors import (
    Conflict,
    Forbidden,
    NotFound,
    SlipwayError,
    Unreachable,
)
from ansible_collections.slipway.platform.plugins.module_utils._kube.proxy import pool_manager
from ansible_collections.slipway.platform.plugins.module_utils._kube.throttle import THROTTLE_BUDGET, Throttle

try:
    import urllib3
    from urllib3.exceptions import HTTPError as Urllib3Error
    from urllib3.exceptions import (
        ConnectTimeoutError,
        MaxRetryError,
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
        SSLError,
        TimeoutError,
    )
    HAS_URLLIB3 = True
    # what a request that never got an answer raises (a TLS failure aside, which _send names itself)
    TRANSPORT_ERRORS = (NewConnectionError, MaxRetryError, ProtocolError, TimeoutError, Urllib3Error, OSError)
    # what certainly never reached the server: any request may be sent again after it
    NOT_SENT = (NewConnectionError, ConnectTimeoutError)
except ImportError:  # pragma: no cover - reported by the module
    HAS_URLLIB3 = False
    TRANSPORT_ERRORS = NOT_SENT = ()

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
# After a 401, how long a token agent (kubelet, vault agent, a CI step) gets to finish writing the rotated token
# to the token file before the request is retried with it (R9: refresh and retry once, else a clean Unauthorized).
TOKEN_ROTATION_GRACE = 5.0
# Answers a server gives while it is starting or overloaded; a ready server's 403 is final, a 500 is final too.
NOT_READY_STATUSES = frozenset((403, 429, 500, 503, 504))
READYZ_POLL = 0.5
ERROR_TYPES = {403: Forbidden, 404: NotFound, 409: Conflict}  # the answers callers handle, by type


def resendable(method, content_type, status=None):
    """Whether a request that failed in transit (or with ``status``) may be sent again without a second effect.

    Reads, deletes and server-side applies are idempotent. A 403, 429 or 503 says the server did nothing, so any
    request may go again; after a lost connection or a 500 a create or an update may already have taken effect.
    """
    if status in (403, 429, 503):
        return True
    return method in ("GET", "DELETE") or (method == "PATCH" and content_type == APPLY_PATCH)


def api_error(method, path, status, body, dry_run=False):
    """A :class:`SlipwayError` for an API error response (a Status object, or anything else); a 403, 404 or 409
    is a :class:`Forbidden`, :class:`NotFound` or :class:`Conflict`."""
    try:
        status_obj = json.loads(body) if body else {}
    except ValueError:
        status_obj = {}
    if not isinstance(status_obj, dict):
        status_obj = {}
    reason = status_obj.get("reason") or str(status)
    message = status_obj.get("message") or (body[:300].decode("utf-8", "replace") if isinstance(body, bytes)
                                            else str(body)[:300])
    details = status_obj.get("details") or {}
    causes = [{k: c.get(k) for k in ("reason", "message", "field") if c.get(k)} for c in details.get("causes") or []]
    hint = {
        401: "the credentials were rejected: check client_cert/client_key or api_token",
        403: "the identity lacks RBAC permission for this request",
        429: "the API server kept refusing this client's priority level as too busy: lower concurrency, or ask the "
             "cluster's admin for a FlowSchema that gives the deployer more share",
    }.get(status)
    what = "server-side dry-run" if dry_run else "request"
    error_type = ERROR_TYPES.get(status, SlipwayError)
    return error_type(f"{method} {path}: {status} {reason}: {message}", status=status, reason=reason,
                      causes=causes, api_message=message, request=f"{what} {method} {path}",
                      **({"hint": hint} if hint else {}))


class KubeClient:
    """JSON over HTTPS to one API server. Safe to share between threads; counts the writes it makes."""

    def __init__(self, conn, max_connections=16, user_agent="slipway.platform", token_grace=TOKEN_ROTATION_GRACE,
                 sleep=time.sleep, monotonic=time.monotonic, outage_grace=0.0):
        if not HAS_URLLIB3:  # pragma: no cover
            raise SlipwayError("the Python library urllib3 is required (pip install urllib3)")
        self.conn = conn
        self._tmpdir = None
        self._lock = threading.Lock()
        self.writes = 0
        self.requests = 0
        self.unauthorized = 0  # 401 answers, retried or not
        self.token_refreshes = 0  # requests retried with a rotated token from the token file
        self.token_grace = token_grace
        # seconds to wait for an API server that answered before and went away (0: fail at once)
        self.outage_grace = outage_grace
        self.answered = False  # whether the API server has answered this client at least once
        self.outages = 0  # requests that waited for the API server to come back
        self._sleep, self._monotonic = sleep, monotonic
        self.throttle = Throttle(max_connections, sleep=sleep, monotonic=monotonic)  # 429s set the pace
        self.user_agent = user_agent
        kwargs = {"num_pools": 2, "retries": False,
                  "timeout": urllib3.Timeout(connect=min(5.0, conn.request_timeout), read=conn.request_timeout)}
        if conn.server.startswith("https://"):
            if conn.validate_certs:
                kwargs["cert_reqs"] = ssl.CERT_REQUIRED
                if conn.ca_file:
                    kwargs["ca_certs"] = conn.ca_file
                elif conn.ca_data:
                    kwargs["ca_cert_data"] = conn.ca_data.decode("ascii", "replace")
            else:
                kwargs["cert_reqs"] = ssl.CERT_NONE
                kwargs["assert_hostname"] = False
            if conn.tls_server_name:  # SNI and the name the certificate must carry
                kwargs["server_hostname"] = conn.tls_server_name
            kwargs["cert_file"] = conn.cert_file or self._private_file("client.crt", conn.cert_data)
            kwargs["key_file"] = conn.key_file or self._private_file("client.key", conn.key_data)
        if not conn.validate_certs:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._pool = pool_manager(conn.proxy_url, maxsize=max_connections, block=True, **kwargs)
        # watches hold their connection for minutes: a pool of their own, never blocking the requests' pool
        self._watch_pool = pool_manager(conn.proxy_url, maxsize=4, block=False, **kwargs)

    def _private_file(self, name, data):
        if not data:
            return None
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="slipway-kube-")
        path = os.path.join(self._tmpdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path

    def close(self):
        self._pool.clear()
        self._watch_pool.clear()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ requests

    def request(self, method, path, body=None, query=None, content_type="application/json", ok_missing=False,
                accept="application/json"):
        """Send one request; return the decoded JSON body (``None`` for a 404 when ``ok_missing``).

        ``accept``: :data:`METADATA_LIST` lists only the objects' metadata (a journal's index without its records).
        """
        url = self.conn.server + path
        if query:
            url += "?" + urlencode([(k, v) for k, v in query.items() if v is not None], doseq=True)
        dry_run = bool(query and query.get("dryRun"))
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = {"Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type
        attempts = 2 if method == "GET" else 1
        outage = None  # when this request first found the server gone or not ready
        refused_once = False
        throttled = 0.0  # seconds of Retry-After this request was asked to wait
        while True:
            attempts -= 1
            try:
                response = self._send(method, path, url, data, headers, dry_run)
            except TRANSPORT_ERRORS as exc:
                if attempts > 0:
                    self._sleep(0.2)
                    continue
                waited = ""
                if self._may_wait(method, content_type, exc=exc):
                    outage = outage or self._monotonic()
                    if self._outlast(outage):
                        continue
                    waited = f" (waited {self.outage_grace:g}s for it to come back)"
                if isinstance(exc, ReadTimeoutError):
                    raise self._unanswered(method, path, dry_run) from None
                raise Unreachable(f"cannot reach the Kubernetes API at {self.conn.server}: {_short(exc)}{waited}",
                                  hint="is the cluster up and api_url right? (from "
                                       f"{self.conn.source})", request=f"{method} {path}") from None
            if response.status == 429 and throttled < THROTTLE_BUDGET:
                throttled += self.throttle.refused(response.headers)  # the next send waits the pause out
                continue
            if response.status in NOT_READY_STATUSES and not refused_once \
                    and self._may_wait(method, content_type, status=response.status):
                # once per request: a server that is not ready is waited for; one that is ready gets one more try,
                # since it may have become ready since it answered (a second refusal is final)
                refused_once = True
                outage = outage or self._monotonic()
                if self._ready() or self._outlast(outage):
                    continue
            break
        if ok_missing and response.status == 404:
            return None
        if response.status >= 400:
            error = api_error(method, path, response.status, response.data, dry_run=dry_run)
            if response.status == 429:
                level = self.throttle.last_level
                raise SlipwayError(f"{error.msg} (still refused after waiting {throttled:g}s of Retry-After"
                                   f"{' for ' + level if level else ''})", **error.details)
            raise error
        if not response.data:
            return {}
        try:
            return json.loads(response.data)
        except ValueError:
            raise SlipwayError(f"{method} {path}: the API answered with something that is not JSON",
                               status=response.status) from None

    def raw_get(self, path, timeout):
        """``(status, body bytes)`` of one GET whatever its status, within ``timeout`` seconds, never retried.

        For what the API server only relays (a service proxy): the answer's status is the verdict, not an error.
        A request it cannot send raises ``SlipwayError`` naming the path.
        """
        timeout = urllib3.Timeout(connect=min(5.0, timeout), read=timeout)
        try:
            response = self._send("GET", path, self.conn.server + path, None, {"Accept": "*/*"}, False, timeout)
        except TRANSPORT_ERRORS as exc:
            reason = "no answer within the timeout" if isinstance(exc, ReadTimeoutError) else _short(exc)
            raise Unreachable(f"GET {path}: {reason}", request=f"GET {path}") from None
        return response.status, response.data

    def watch(self, path, query, timeout):
        """A :class:`Watch` of the collection ``path``: its events until the server ends it (``timeoutSeconds`` in
        ``query``) or nothing arrives for ``timeout`` seconds.

        A status of 400 or more raises the API's error at once (410 Gone: the resourceVersion is too old, list
        again); transport errors are the caller's.
        """
        url = self.conn.server + path + "?" + urlencode(dict(query, watch="true"))
        read = urllib3.Timeout(connect=min(5.0, self.conn.request_timeout), read=timeout)
        response = self._send("GET", path, url, None, {"Accept": "application/json"}, False, read, stream=True)
        if response.status >= 400:
            body = response.data
            response.release_conn()
            raise api_error("GET", path, response.status, body)
        return Watch(response)

    def _send(self, method, path, url, data, headers, dry_run, timeout=None, stream=False):
        """One exchange under the client's identity, counted; a 401 is retried once with a renewed token (a rotated
        token file, an exec plugin run again). A request waits for the throttle unless it is a watch (``stream``).

        Transport errors are the caller's to name; a TLS failure is named here, it is the same for every caller.
        """
        refreshed = False
        while True:
            headers = dict(headers, **{"User-Agent": self.user_agent})
            token = self.conn.current_token()
            if token:
                headers["Authorization"] = "Bearer " + token
            extra = {"timeout": timeout} if timeout else {}
            try:
                if stream:
                    response = self._watch_pool.request(method, url, headers=headers, retries=False,
                                                        preload_content=False, **extra)
                else:
                    with self.throttle:
                        response = self._pool.request(method, url, body=data, headers=headers, retries=False, **extra)
            except SSLError as exc:
                raise SlipwayError(f"TLS handshake with {self.conn.server} failed: {_short(exc)}",
                                   hint="check ca_cert (the CA that signed the API server certificate), "
                                        "client_cert/client_key, or validate_certs",
                                   request=f"{method} {path}") from None
            with self._lock:
                self.requests += 1
                self.answered = True
                if method in WRITE_METHODS and not dry_run and response.status < 300:
                    self.writes += 1
            if response.status != 429:
                self.throttle.answered()
            if response.status != 401:
                return response
            with self._lock:
                self.unauthorized += 1
            # A 401 means the server did nothing, so even a write is safe to send again; once only, so a revoked
            # token fails in seconds instead of looping.
            if refreshed or not self.conn.renewable_token or not self._rotated_token(rejected=token):
                raise self._unauthorized(method, path, response.data, dry_run, retried=refreshed)
            refreshed = True
            with self._lock:
                self.token_refreshes += 1

    def _may_wait(self, method, content_type, exc=None, status=None):
        """Whether a failure may be a server coming back (it answered before) and the request may go again."""
        if not self.outage_grace or not self.answered:
            return False
        if isinstance(exc, NOT_SENT):
            return True
        return resendable(method, content_type, status)

    def _ready(self):
        """The server's own word on whether it is ready (``/readyz``); unreachable is not ready."""
        try:
            status, _body = self.raw_get("/readyz", timeout=min(5.0, self.conn.request_timeout))
        except SlipwayError:
            return False
        return status == 200

    def _outlast(self, since):
        """Wait until the API server says it is ready, within ``outage_grace`` of ``since``; whether it did."""
        with self._lock:
            self.outages += 1
        while self._monotonic() - since < self.outage_grace:
            self._sleep(READYZ_POLL)  # also spaces out the tries when the server says ready yet fails the request
            if self._ready():
                return True
        return False

    def get(self, path, query=None, ok_missing=False):
        return self.request("GET", path, query=query, ok_missing=ok_missing)

    def _rotated_token(self, rejected):
        """A token other than the one just rejected, or None.

        An exec plugin runs again at once (a failure to run it is the error). A token file is waited for (briefly):
        an agent rotates the file before the old token expires, so the new token is usually there already; the
        grace covers an agent that is still writing. An empty or unreadable file is a rotation in progress.
        """
        self.conn.forget_token(rejected)
        if not self.conn.token_file:
            token = self.conn.current_token()
            return token if token and token != rejected else None
        deadline = self._monotonic() + self.token_grace
        while True:
            try:
                token = self.conn.current_token()
            except SlipwayError:
                token = None
            if token and token != rejected:
                return token
            if self._monotonic() >= deadline:
                return None
            self._sleep(0.1)

    def _unanswered(self, method, path, dry_run):
        """A request the API server accepted but did not answer in time: it is up, what it stands on may not be."""
        hint = ("the API server accepted the connection but did not answer: its storage (etcd) may be down or "
                "overloaded; if it is only slow, raise request_timeout")
        if method in WRITE_METHODS and not dry_run:
            hint += "; the write may still have been applied, and running again reconciles it"
        return Unreachable(f"{method} {path}: the Kubernetes API at {self.conn.server} did not answer within "
                           f"{self.conn.request_timeout:g}s", hint=hint, request=f"{method} {path}")

    def _unauthorized(self, method, path, body, dry_run, retried):
        """A 401 as a :class:`SlipwayError` that says which credential was rejected and what to do about it."""
        error = api_error(method, path, 401, body, dry_run=dry_run)
        conn = self.conn
        if conn.token_file:
            again = "again after re-reading it" if retried else \
                f"and no other token was written there within {self.token_grace:g}s"
            what = f"the API server rejected the token in the token file {conn.token_file} {again}"
            todo = ("the token expired or was revoked: write a valid one to that file (for example the output of "
                    "`kubectl create token SERVICE_ACCOUNT`), or let the agent that rotates it finish, then run again")
        elif conn.exec_plugin is not None:
            again = " again after running it again" if retried else ""
            what = f"the API server rejected the credential from {conn.exec_plugin.where}{again}"
            todo = ("its login may have expired or its identity lacks access to the cluster: run the plugin (or "
                    "the login it needs) by hand, then run again")
        elif conn.token:
            what = "the API server rejected the bearer token (api_token)"
            todo = "it expired or was revoked: give a valid api_token (slipway_kube_api_token), then run again"
        elif conn.cert_file or conn.cert_data:
            what = "the API server rejected the client certificate"
            todo = "check client_cert/client_key: signed by the cluster's client CA and not expired"
        else:
            what = "no credentials were sent"
            todo = "give a client certificate (client_cert/client_key), api_token or a kubeconfig with a user"
        return SlipwayError(f"{method} {path}: 401 Unauthorized: {what} (from {conn.source}); {todo}",
                            **dict(error.details, hint=todo))


class Watch:
    """One watch's stream: iterate it for the events (decoded JSON, one per line); :meth:`stop` from another
    thread ends it early, :meth:`close` gives the connection back."""

    def __init__(self, response):
        self._response = response

    def __iter__(self):
        for line in self._response:
            if line.strip():
                yield json.loads(line)

    def stop(self):
        shutdown = getattr(self._response, "shutdown", None)  # urllib3 >= 2.3; older ones end at timeoutSeconds
        if shutdown is None:
            return
        # the reading thread may have closed or released the response first: then there is nothing to interrupt
        with contextlib.suppress(ValueError, RuntimeError, OSError):
            shutdown()

    def close(self):
        self._response.close()  # a watch is never read to its end: its connection cannot serve another request
        self._response.release_conn()


def _short(exc):
    """The innermost useful text of a urllib3 exception, without the full URL noise."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.rsplit("CERTIFICATE_VERIFY_FAILED", maxsplit=1)[-1].strip(" ():'\"")
        return f"certificate verify failed ({detail})"
    return text[:300]


def object_path(resource, namespace=None, name=None, subresource=None):
    """The URL path of a resource collection or object (``resource`` comes from discovery)."""
    if resource.namespaced and not namespace:
        raise SlipwayError(f"{resource.kind} is namespaced; a namespace is required")
    return api_path(resource.group_version, resource.name, namespace if resource.namespaced else None, name,
                    subresource)


def api_path(group_version, plural, namespace=None, name=None, subresource=None):
    """The URL path of a collection or object of a built-in kind that needs no discovery (``v1`` ``secrets``,
    ``coordination.k8s.io/v1`` ``leases``, ...); cluster-scoped when ``namespace`` is ``None``."""
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{plural}"
    if name:
        base += f"/{quote(name, safe='')}"
    if subresource:
        base += f"/{subresource}"
    return base


def service_proxy_path(namespace, service, port, path, https=False):
    """The path of ``path`` on a Service's port through the API server's service proxy (``services/proxy``)."""
    scheme = "https:" if https else ""  # the proxy's own syntax: not quoted like an object's name
    return f"{api_path('v1', 'services', namespace)}/{scheme}{service}:{port}/proxy{path}"
