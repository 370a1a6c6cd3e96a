# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection settings: explicit options over a kubeconfig (file, ``$KUBECONFIG``, ``~/.kube/config``)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None


@dataclass
class Connection:
    """Everything needed to reach one API server. Certificates are paths or PEM bytes."""

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    cert_file: str | None = None
    cert_data: bytes | None = None
    key_file: str | None = None
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    validate_certs: bool = True
    request_timeout: float = 30.0
    source: str = "options"
    extra: dict = field(default_factory=dict)

    def current_token(self):
        """The bearer token; a token file is re-read each call so a rotated token is picked up (R9)."""
        if self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as handle:
                    return handle.read().strip()
            except OSError as exc:
                raise SlipwayError(f"cannot read the token file {self.token_file}: {exc.strerror}") from None
        return self.token


def _b64(value, what, source):
    try:
        return base64.b64decode(value)
    except (ValueError, TypeError):
        raise SlipwayError(f"{what} in {source} is not valid base64") from None


def _relative(path, base_dir):
    if path and not os.path.isabs(path):
        return os.path.join(base_dir, path)
    return path


def _named(entries, name, what, source):
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(what) or {}
    raise SlipwayError(f"kubeconfig {source} has no {what} named {name!r}",
                       hint=f"list them with: kubectl --kubeconfig {source} config view")


def _from_kubeconfig(path, context_name):
    if yaml is None:  # pragma: no cover
        raise SlipwayError("PyYAML is required to read a kubeconfig")
    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise SlipwayError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SlipwayError(f"kubeconfig {path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise SlipwayError(f"kubeconfig {path} is not a mapping")
    name = context_name or config.get("current-context")
    if not name:
        raise SlipwayError(f"kubeconfig {path} has no current-context; set the context option")
    context = _named(config.get("contexts"), name, "context", path)
    cluster = _named(config.get("clusters"), context.get("cluster"), "cluster", path)
    user = _named(config.get("users"), context.get("user"), "user", path) if context.get("user") else {}
    base_dir = os.path.dirname(os.path.abspath(path))
    conn = Connection(server=cluster.get("server") or "", source=f"kubeconfig {path} (context {name})")
    conn.ca_file = _relative(cluster.get("certificate-authority"), base_dir)
    if cluster.get("certificate-authority-data"):
        conn.ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data", path)
    if cluster.get("insecure-skip-tls-verify"):
        conn.validate_certs = False
    conn.cert_file = _relative(user.get("client-certificate"), base_dir)
    if user.get("client-certificate-data"):
        conn.cert_data = _b64(user["client-certificate-data"], "client-certificate-data", path)
    conn.key_file = _relative(user.get("client-key"), base_dir)
    if user.get("client-key-data"):
        conn.key_data = _b64(user["client-key-data"], "client-key-data", path)
    conn.token = user.get("token")
    conn.token_file = _relative(user.get("tokenFile"), base_dir)
    if user.get("exec") or user.get("auth-provider"):
        conn.extra["unsupported_auth"] = "exec" if user.get("exec") else "auth-provider"
    return conn


def load_connection(params, environ=None):
    """Build a :class:`Connection` from the kube connection options (see ``args.KUBE_CONNECTION_SPEC``)."""
    environ = os.environ if environ is None else environ
    kubeconfig = params.get("kubeconfig")
    if not kubeconfig and not params.get("api_url"):
        candidates = [p for p in (environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
        candidates.append(os.path.expanduser("~/.kube/config"))
        kubeconfig = next((p for p in candidates if os.path.exists(p)), None)
        if not kubeconfig:
            raise SlipwayError("no API server given: set api_url (slipway_kube_api_url) or kubeconfig")
    conn = _from_kubeconfig(kubeconfig, params.get("kube_context")) if kubeconfig else Connection(server="")
    if params.get("api_url"):
        conn.server = params["api_url"]
        conn.source = "options" if not kubeconfig else conn.source + " with api_url from options"
    for option, attribute in (("ca_cert", "ca_file"), ("client_cert", "cert_file"), ("client_key", "key_file")):
        if params.get(option):
            setattr(conn, attribute, params[option])
            setattr(conn, attribute.replace("_file", "_data"), None)
    if params.get("api_token"):
        conn.token, conn.token_file = params["api_token"], None
    if params.get("validate_certs") is False:
        conn.validate_certs = False
    if params.get("request_timeout"):
        conn.request_timeout = float(params["request_timeout"])
    if conn.extra.get("unsupported_auth") and not (conn.token or conn.token_file or conn.cert_file or conn.cert_data):
        raise SlipwayError(f"{conn.source} uses {conn.extra['unsupported_auth']} authentication, which Slipway "
                           "does not run; give a client certificate or api_token instead")
    if not conn.server.startswith(("https://", "http://")):
        raise SlipwayError(f"API server URL {conn.server!r} from {conn.source} must start with https://")
    for attribute in ("ca_file", "cert_file", "key_file"):
        path = getattr(conn, attribute)
        if path and not os.path.isfile(path):
            raise SlipwayError(f"{attribute.replace('_file', '')} file {path} does not exist (from {conn.source})")
    if bool(conn.cert_file or conn.cert_data) != bool(conn.key_file or conn.key_data):
        raise SlipwayError("a client certificate needs its key and a key needs its certificate "
                           f"(client_cert/client_key, from {conn.source})")
    conn.server = conn.server.rstrip("/")
    return conn
