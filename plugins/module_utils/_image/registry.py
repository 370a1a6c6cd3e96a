# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client of the Registry HTTP API v2: is this tag there, and under which digest?

Basic and bearer-token authentication (the challenge in ``WWW-Authenticate`` decides; once a registry
has asked for Basic, the credentials go with every request). Loopback registries are spoken to over plain
HTTP, as the Docker Engine does; every other registry over HTTPS with certificate checks. One kept-alive
connection per thread: a lookup is one round trip, which is what makes an unchanged rebuild cheap. Errors
never carry the password.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import ssl
import threading
import urllib.parse
from dataclasses import dataclass

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?$")


def is_loopback(registry):
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0] + "]"
    return host in ("localhost", "[::1]") or host.startswith("127.")


def validate_registry(registry):
    if not registry or not REGISTRY.match(registry):
        raise SlipwayError(f"registry {registry!r} is not a host[:port] (for example 127.0.0.1:5001)")


def validate_repository(name):
    if not name or len(name) > 255 or not REPOSITORY.match(name):
        raise SlipwayError(f"image name {name!r} is not a valid repository name "
                           "(lower-case letters, digits, '.', '_', '-', '/' between components)")


def _challenge(header):
    """``Bearer realm="...",service="..."`` -> ("bearer", {"realm": ..., ...})."""
    scheme, _space, rest = (header or "").partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Registry:
    """One registry, one identity. ``username``/``password`` may be None for an anonymous registry."""

    def __init__(self, registry, username=None, password=None, timeout=10.0, scheme=None):
        validate_registry(registry)
        self.registry = registry
        self.base = f"{scheme or ('http' if is_loopback(registry) else 'https')}://{registry}"
        self.username = username
        self._password = password
        self.timeout = timeout
        self._auth = {}  # scope -> Authorization header value
        self._basic_always = False
        self._local = threading.local()

    # -- transport ------------------------------------------------------------------------------------
    def _connection(self, scheme, netloc):
        connections = self._local.__dict__.setdefault("connections", {})
        if (scheme, netloc) not in connections:
            if scheme == "https":
                connections[(scheme, netloc)] = http.client.HTTPSConnection(
                    netloc, timeout=self.timeout, context=ssl.create_default_context())
            else:
                connections[(scheme, netloc)] = http.client.HTTPConnection(netloc, timeout=self.timeout)
        return connections[(scheme, netloc)]

    def _open(self, method, url, headers):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SlipwayError(f"registry {self.registry}: refusing to open {url!r} (not http or https)")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        problem = None
        for _attempt in (1, 2):  # a kept-alive connection the server has closed is retried once, fresh
            connection = self._connection(parts.scheme, parts.netloc)
            try:
                connection.request(method, target, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as err:
                connection.close()
                problem = err
                continue
            except (OSError, http.client.HTTPException) as err:
                connection.close()
                problem = err
                break
            if response.will_close:
                connection.close()
            return Response(response.status, response.headers, body)
        raise SlipwayError(f"registry {self.registry} is unreachable: {problem}", registry=self.registry)

    def _basic(self):
        if self.username is None:
            return None
        token = base64.b64encode(f"{self.username}:{self._password or ''}".encode()).decode()
        return f"Basic {token}"

    def _authorize(self, header, scope):
        scheme, params = _challenge(header)
        if scheme == "basic":
            self._basic_always = True
            return self._basic()
        if scheme == "bearer" and params.get("realm"):
            query = {"service": params.get("service", "")}
            if scope:
                query["scope"] = scope
            url = params["realm"] + "?" + urllib.parse.urlencode(query)
            headers = {"Authorization": self._basic()} if self.username is not None else {}
            response = self._open("GET", url, headers)
            if response.status != 200:
                raise self._refused(response.status)
            body = json.loads(response.body)
            return f"Bearer {body.get('token') or body.get('access_token')}"
        raise SlipwayError(f"registry {self.registry} asks for unsupported authentication {scheme!r}",
                           registry=self.registry)

    def _refused(self, status):
        who = f"user {self.username!r}" if self.username is not None else "anonymous access"
        return SlipwayError(f"registry {self.registry} refused {who} (HTTP {status}): check "
                            "slipway_registry_username and slipway_registry_password",
                            registry=self.registry, status=status)

    def request(self, method, path, headers=None, scope=""):
        """One request with authentication; returns the response (any status but 401)."""
        headers = dict(headers or {})
        if scope in self._auth:
            headers["Authorization"] = self._auth[scope]
        elif self._basic_always and self.username is not None:
            headers["Authorization"] = self._basic()
        response = self._open(method, self.base + path, headers)
        if response.status == 401 and "Authorization" not in headers:
            self._auth[scope] = self._authorize(response.headers.get("WWW-Authenticate"), scope)
            if self._auth[scope]:
                headers["Authorization"] = self._auth[scope]
                response = self._open(method, self.base + path, headers)
        if response.status == 401:
            raise self._refused(401)
        return response

    # -- API ------------------------------------------------------------------------------------------
    def check(self):
        """Reachable and the credentials accepted (``GET /v2/``); raises SlipwayError otherwise."""
        response = self.request("GET", "/v2/")
        if response.status != 200:
            raise SlipwayError(f"registry {self.registry} answered HTTP {response.status} to /v2/",
                               registry=self.registry, status=response.status)

    def manifest_digest(self, repository, reference):
        """The ``sha256:...`` digest of ``repository:reference``, or None when the registry has no such tag."""
        response = self._manifest_response("HEAD", repository, reference)
        if response is None:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        return "sha256:" + hashlib.sha256(self._manifest_response("GET", repository, reference).body).hexdigest()

    def config_digest(self, repository, reference, platform):
        """The config digest of ``repository:reference`` for ``platform`` (``os/architecture[/variant]``): what
        the engine calls the image's ID once pulled. An index is followed to that platform's manifest. None when
        the registry has no such tag."""
        manifest = self._manifest(repository, reference)
        if manifest is not None and "manifests" in manifest:
            wanted = platform.split("/")
            chosen = [entry for entry in manifest["manifests"] if _platform_of(entry)[:len(wanted)] == wanted]
            if not chosen:
                raise SlipwayError(f"registry {self.registry}: {repository}:{reference} has no image for {platform}",
                                   registry=self.registry)
            manifest = self._manifest(repository, chosen[0]["digest"])
        if manifest is None:
            return None
        digest = manifest.get("config", {}).get("digest")
        if not digest:
            raise SlipwayError(f"registry {self.registry}: {repository}:{reference} is not an image manifest Slipway "
                               "reads (schema 2 or OCI)", registry=self.registry)
        return digest

    def _manifest(self, repository, reference):
        """The parsed manifest (or index) of ``repository:reference``, None when there is none."""
        response = self._manifest_response("GET", repository, reference)
        if response is None:
            return None
        try:
            return json.loads(response.body)
        except ValueError:
            raise SlipwayError(f"registry {self.registry}: the manifest of {repository}:{reference} is not JSON",
                               registry=self.registry) from None

    def _manifest_response(self, method, repository, reference):
        validate_repository(repository)
        response = self.request(method, f"/v2/{repository}/manifests/{reference}", {"Accept": MANIFEST_TYPES},
                                scope=f"repository:{repository}:pull")
        if response.status == 404:
            return None
        if response.status != 200:
            raise SlipwayError(f"registry {self.registry} answered HTTP {response.status} for {repository}:"
                               f"{reference}", registry=self.registry, status=response.status)
        return response


def _platform_of(entry):
    """``[os, architecture, variant]`` of an index entry (variant may be missing)."""
    offered = entry.get("platform") or {}
    return [offered.get("os"), offered.get("architecture")] + ([offered["variant"]] if offered.get("variant") else [])
