# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials from a kubeconfig ``exec`` plugin (``client.authentication.k8s.io`` ExecCredential), run as kubectl
runs them: EKS (``aws eks get-token``), GKE (``gke-gcloud-auth-plugin``), AKS and OIDC logins (``kubelogin``).

Slipway always runs non-interactively (a playbook, CI, an agent): the plugin gets no terminal on stdin and is told
``spec.interactive: false``; a plugin that declares ``interactiveMode: Always`` is refused before it runs, one that
says ``IfAvailable`` or ``Never`` runs. What it prints is cached in memory until its ``expirationTimestamp`` (for
the whole run without one), so one run starts the plugin once; a 401 drops the cached credential and runs it again
(``KubeClient`` does that, once per request). Its stdout carries the credential and never appears in a message; its
stderr does when it fails.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
# A plugin that waits longer than this is waiting for a person (a browser login, a device code) who is not there.
EXEC_TIMEOUT = 120.0
STDERR_SHOWN = 2000  # the tail of a failed plugin's stderr that a message carries
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class Credential:
    """What one run of the plugin gave: a bearer token and/or a client certificate (PEM), valid until ``expires``."""

    token: str | None = field(default=None, repr=False)
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    expires: float | None = None  # seconds since the epoch; None: for the whole run


def parse_timestamp(text):
    """Seconds since the epoch of an RFC 3339 timestamp (``2030-01-02T03:04:05Z``, fractions and offsets too)."""
    match = _RFC3339.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(text)
    day, clock, fraction, zone = match.groups()
    moment = datetime.strptime(f"{day}T{clock}", "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    if zone not in ("Z", "z"):
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        moment -= offset if zone[0] == "+" else -offset
    return moment.timestamp() + (float(fraction) if fraction else 0.0)


class ExecPlugin:
    """One kubeconfig user's ``exec`` section; :meth:`credential` runs it when no unexpired credential is cached.

    ``cluster_info`` is the ExecCredential ``spec.cluster`` sent when the plugin asks for it (``provideClusterInfo``).
    Thread-safe: concurrent requests that find the cache empty run the plugin once between them.
    """

    def __init__(self, spec, user, source, base_dir=".", cluster_info=None, environ=None, clock=time.time):
        if not isinstance(spec, dict) or not spec.get("command"):
            raise SlipwayError(f"the exec section of user {user!r} in {source} has no command")
        self.api_version = spec.get("apiVersion")
        if self.api_version not in API_VERSIONS:
            raise SlipwayError(f"the exec plugin of user {user!r} in {source} asks for apiVersion "
                               f"{self.api_version!r}; Slipway speaks {' and '.join(API_VERSIONS)}",
                               hint="update the kubeconfig (re-run the command that wrote it, for example "
                                    "`aws eks update-kubeconfig` or `gcloud container clusters get-credentials`)")
        self.where = f"the exec plugin {spec['command']!r} of user {user!r} in {source}"
        if spec.get("interactiveMode") == "Always":
            raise SlipwayError(f"{self.where} needs a terminal (interactiveMode: Always), and Slipway runs without "
                               "one", hint="use a non-interactive login for automation (a service principal, a "
                                           "workload identity, a token) or log in beforehand and set "
                                           "interactiveMode: IfAvailable")
        command = os.path.expanduser(spec["command"])
        # kubectl resolves a command with a path in it against the kubeconfig's folder; a bare name goes to PATH
        if os.sep in command and not os.path.isabs(command):
            command = os.path.join(base_dir, command)
        self.argv = [command, *[str(arg) for arg in spec.get("args") or []]]
        self.install_hint = (spec.get("installHint") or "").strip()
        self.extra_env = {item["name"]: str(item.get("value", "")) for item in spec.get("env") or []
                          if isinstance(item, dict) and item.get("name")}
        self.cluster_info = cluster_info if spec.get("provideClusterInfo") else None
        self.environ = os.environ if environ is None else environ
        self.runs = 0  # how often the plugin was started
        self._clock = clock
        self._cached = None
        self._lock = threading.Lock()

    def credential(self):
        """The cached credential while it is valid, else a fresh one from the plugin."""
        with self._lock:
            cached = self._cached
            if cached is None or (cached.expires is not None and self._clock() >= cached.expires):
                self._cached = cached = self._run()
            return cached

    def forget(self, rejected_token):
        """The API server rejected ``rejected_token``: the next :meth:`credential` runs the plugin again.

        Only if that is still the cached token, so that threads rejected at once run the plugin once between them.
        """
        with self._lock:
            if self._cached is not None and self._cached.token == rejected_token:
                self._cached = None

    def _run(self):
        request = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
        if self.cluster_info is not None:
            request["spec"]["cluster"] = self.cluster_info
        env = dict(self.environ, **self.extra_env, KUBERNETES_EXEC_INFO=json.dumps(request))
        self.runs += 1
        try:
            done = subprocess.run(self.argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=EXEC_TIMEOUT, check=False)
        except FileNotFoundError:
            raise SlipwayError(f"{self.where} is not installed: no {self.argv[0]} on PATH",
                               hint=self.install_hint or "install the plugin the kubeconfig names, or put it on "
                                                         "the PATH Slipway runs with") from None
        except PermissionError:
            raise SlipwayError(f"{self.where} cannot be run: {self.argv[0]} is not executable") from None
        except subprocess.TimeoutExpired:
            raise SlipwayError(f"{self.where} did not finish within {EXEC_TIMEOUT:g}s",
                               hint="Slipway runs it without a terminal: a plugin waiting for a login (a browser, "
                                    "a device code) must be logged in beforehand") from None
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip()[-STDERR_SHOWN:]
            raise SlipwayError(f"{self.where} failed with exit status {done.returncode}: "
                               f"{stderr or '(nothing on stderr)'}",
                               hint="run the command by hand to see what it needs (a login, a refresh, a "
                                    "permission)")
        return self._credential(done.stdout)

    def _credential(self, stdout):
        """The ExecCredential the plugin printed; a message about it never quotes it (it holds the secret)."""
        try:
            answer = json.loads(stdout)
        except ValueError:
            raise SlipwayError(f"{self.where} did not print an ExecCredential in JSON on stdout") from None
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise SlipwayError(f"{self.where} printed JSON that is not an ExecCredential")
        if answer.get("apiVersion") != self.api_version:
            raise SlipwayError(f"{self.where} answered with apiVersion {answer.get('apiVersion')!r} to a request "
                               f"for {self.api_version}")
        status = answer.get("status") if isinstance(answer.get("status"), dict) else {}
        token = status.get("token") or None
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if bool(cert) != bool(key):
            raise SlipwayError(f"{self.where} gave a client certificate without its key, or a key without its "
                               "certificate")
        if not token and not cert:
            raise SlipwayError(f"{self.where} gave neither a token nor a client certificate")
        expires = None
        if status.get("expirationTimestamp"):
            try:
                expires = parse_timestamp(status["expirationTimestamp"])
            except ValueError:
                raise SlipwayError(f"{self.where} gave an expirationTimestamp that is not RFC 3339: "
                                   f"{status['expirationTimestamp']!r}") from None
        return Credential(token=token, cert_data=cert.encode() if cert else None,
                          key_data=key.encode() if key else None, expires=expires)


def cluster_info(cluster, ca_data, extensions):
    """The ExecCredential ``spec.cluster`` of a kubeconfig cluster entry (for plugins that ``provideClusterInfo``)."""
    info = {"server": cluster.get("server") or ""}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url", "disable-compression"):
        if cluster.get(key):
            info[key] = cluster[key]
    if ca_data:
        info["certificate-authority-data"] = base64.b64encode(ca_data).decode("ascii")
    for extension in extensions or []:
        if isinstance(extension, dict) and extension.get("name") == "client.authentication.k8s.io/exec":
            info["config"] = extension.get("extension")
    return info
