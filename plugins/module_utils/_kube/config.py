# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection settings: explicit options over a kubeconfig read as kubectl reads it, or the pod's service account.

Where the settings come from (the first that applies):

1. the ``kubeconfig`` option (one file);
2. ``api_url`` without ``kubeconfig``: the options alone;
3. every existing file in ``$KUBECONFIG`` (``os.pathsep``-separated), merged as kubectl merges them: the first file
   that names a cluster, user or context wins it, ``current-context`` comes from the first file that has one, and
   relative paths resolve against the file that holds them;
4. ``~/.kube/config`` when ``$KUBECONFIG`` is unset or empty;
5. in a pod (``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` set): the service account's token (re-read
   when it rotates, like any token file), ``ca.crt`` and namespace under ``SERVICE_ACCOUNT_DIR``.

A kubeconfig user may authenticate with a client certificate, ``token``, ``tokenFile`` or an ``exec`` credential
plugin (``exec_credential.py``); ``auth-provider`` is refused with the exec plugin that replaces it. A cluster's
``proxy-url`` (else ``HTTPS_PROXY``/``NO_PROXY``, see ``proxy.py``) and ``tls-server-name`` are honoured.

Why not the ``kubernetes`` Python client's loader (``kubernetes.config``, v37): importing it imports the whole
generated client. Measured on the development machine (fresh processes, the fastest of 25): ``import
kubernetes.config`` takes 0.22 s, ``config.py`` and ``client.py`` together 0.09 s (urllib3 and PyYAML included; the
exec plugin code adds 3 ms), so the library would more than triple what every module run pays before its first
request, and it would become a requirement on every host that runs the modules. A redelivery of 30 systems took
the same time before and after this code (median 0.13 s and 0.11 s, zero writes). Its exec support is the same
subprocess handling ``exec_credential.py`` does in a page, and it hands credentials to its own ``Configuration``,
which this client does not use. The kubeconfig format is small and stable; PyYAML (shipped with ansible-core)
parses it.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.exec_credential import ExecPlugin, cluster_info
from ansible_collections.slipway.platform.plugins.module_utils._kube.proxy import check_proxy_url, proxy_for

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# What replaces each auth-provider kubectl dropped or deprecated: all of them are exec plugins now.
AUTH_PROVIDER_REPLACEMENTS = {
    "gcp": "the exec plugin gke-gcloud-auth-plugin (`gcloud components install gke-gcloud-auth-plugin`, then "
           "`gcloud container clusters get-credentials` writes the exec section)",
    "azure": "the exec plugin kubelogin (Azure/kubelogin: `kubelogin convert-kubeconfig` writes the exec section)",
    "oidc": "the exec plugin kubelogin (int128/kubelogin, `kubectl oidc-login setup` shows the exec section)",
}


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
    exec_plugin: ExecPlugin | None = None
    auth_provider: str | None = None  # the name of a kubeconfig auth-provider, which Slipway does not run
    validate_certs: bool = True
    tls_server_name: str | None = None  # the name the server's certificate must carry, when not the URL's host
    proxy_url: str | None = None
    namespace: str | None = None  # the identity's default namespace (kubeconfig context, or the pod's)
    request_timeout: float = 30.0
    source: str = "options"

    def current_token(self):
        """The bearer token; a token file is re-read each call so a rotated token is picked up (R9), an exec
        plugin's credential is cached until it expires."""
        if self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as handle:
                    return handle.read().strip()
            except OSError as exc:
                raise SlipwayError(f"cannot read the token file {self.token_file}: {exc.strerror}") from None
        if self.exec_plugin is not None:
            return self.exec_plugin.credential().token
        return self.token

    @property
    def renewable_token(self):
        """Whether a rejected token may be replaced by another: a token file rotates, an exec plugin runs again."""
        return bool(self.token_file or self.exec_plugin is not None)

    def forget_token(self, rejected):
        """The API server rejected ``rejected``: do not send it again (an exec plugin's cache drops it)."""
        if self.exec_plugin is not None:
            self.exec_plugin.forget(rejected)


def _b64(value, what, source):
    try:
        return base64.b64decode(value)
    except (ValueError, TypeError):
        raise SlipwayError(f"{what} in {source} is not valid base64") from None


def _relative(path, base_dir):
    if path and not os.path.isabs(path):
        return os.path.join(base_dir, os.path.expanduser(path))
    return path


def _read_kubeconfig(path):
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
    return config


def merge_kubeconfigs(paths):
    """The kubeconfigs at ``paths`` merged as kubectl merges ``$KUBECONFIG``.

    ``{"current-context": name, "clusters"|"users"|"contexts": {name: (entry, folder of its file)}}``.
    """
    merged = {"current-context": None, "clusters": {}, "users": {}, "contexts": {}}
    for path in paths:
        config = _read_kubeconfig(path)
        base_dir = os.path.dirname(os.path.abspath(path))
        merged["current-context"] = merged["current-context"] or config.get("current-context")
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in config.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") and entry["name"] not in merged[section]:
                    merged[section][entry["name"]] = (entry.get(key) or {}, base_dir)
    return merged


def _named(merged, section, name, paths):
    if name not in merged[section]:
        files = os.pathsep.join(paths)
        raise SlipwayError(f"kubeconfig {files} has no {section[:-1]} named {name!r}",
                           hint=f"list them with: KUBECONFIG={files} kubectl config view")
    return merged[section][name]


def _from_kubeconfig(paths, context_name, environ):
    where = "kubeconfig " + os.pathsep.join(paths)
    merged = merge_kubeconfigs(paths)
    name = context_name or merged["current-context"]
    if not name:
        raise SlipwayError(f"{where} has no current-context; set the kube_context option")
    context, _base = _named(merged, "contexts", name, paths)
    cluster, cluster_dir = _named(merged, "clusters", context.get("cluster"), paths)
    user_name = context.get("user")
    user, user_dir = _named(merged, "users", user_name, paths) if user_name else ({}, ".")
    source = f"{where} (context {name})"
    conn = Connection(server=cluster.get("server") or "", source=source, namespace=context.get("namespace"))
    conn.ca_file = _relative(cluster.get("certificate-authority"), cluster_dir)
    if cluster.get("certificate-authority-data"):
        conn.ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data", where)
    if cluster.get("insecure-skip-tls-verify"):
        conn.validate_certs = False
    conn.tls_server_name = cluster.get("tls-server-name") or None
    if cluster.get("proxy-url"):
        conn.proxy_url = check_proxy_url(cluster["proxy-url"], f"the proxy-url of cluster {context.get('cluster')!r}"
                                                               f" in {where}")
    conn.cert_file = _relative(user.get("client-certificate"), user_dir)
    if user.get("client-certificate-data"):
        conn.cert_data = _b64(user["client-certificate-data"], "client-certificate-data", where)
    conn.key_file = _relative(user.get("client-key"), user_dir)
    if user.get("client-key-data"):
        conn.key_data = _b64(user["client-key-data"], "client-key-data", where)
    conn.token = user.get("token")
    conn.token_file = _relative(user.get("tokenFile"), user_dir)
    if user.get("exec"):
        info = None
        if isinstance(user["exec"], dict) and user["exec"].get("provideClusterInfo"):
            info = cluster_info(cluster, conn.ca_data or _file_bytes(conn.ca_file), cluster.get("extensions"))
        conn.exec_plugin = ExecPlugin(user["exec"], user_name, source, base_dir=user_dir, cluster_info=info,
                                      environ=environ)
    elif user.get("auth-provider"):
        conn.auth_provider = (user["auth-provider"] or {}).get("name") or "unnamed"
    return conn


def _file_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (OSError, TypeError):
        return None


def _in_cluster(environ, account_dir):
    """The pod's own service account, as ``rest.InClusterConfig`` reads it."""
    host, port = environ["KUBERNETES_SERVICE_HOST"], environ["KUBERNETES_SERVICE_PORT"]
    token_file = os.path.join(account_dir, "token")
    if not os.path.isfile(token_file):
        raise SlipwayError(f"running in a pod (KUBERNETES_SERVICE_HOST is set) but there is no service account "
                           f"token at {token_file}",
                           hint="mount the pod's service account token (automountServiceAccountToken: true), or "
                                "give a kubeconfig or api_url")
    ca_file = os.path.join(account_dir, "ca.crt")
    namespace = (_file_bytes(os.path.join(account_dir, "namespace")) or b"").decode("utf-8", "replace").strip()
    return Connection(server=f"https://{f'[{host}]' if ':' in host else host}:{port}", token_file=token_file,
                      ca_file=ca_file if os.path.isfile(ca_file) else None, namespace=namespace or None,
                      source=f"in-cluster service account ({account_dir})")


def _configured(params, environ, account_dir):
    """The connection the kubeconfig (or the pod) gives, before the explicit options."""
    if params.get("kubeconfig"):
        return _from_kubeconfig([params["kubeconfig"]], params.get("kube_context"), environ)
    if params.get("api_url"):
        return Connection(server="")
    listed = [p for p in (environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
    paths = [p for p in listed or [os.path.expanduser("~/.kube/config")] if os.path.exists(p)]
    if paths:
        return _from_kubeconfig(paths, params.get("kube_context"), environ)
    if environ.get("KUBERNETES_SERVICE_HOST") and environ.get("KUBERNETES_SERVICE_PORT") \
            and not params.get("kube_context"):
        return _in_cluster(environ, account_dir)
    missing = f"; none of the files in $KUBECONFIG exists ({os.pathsep.join(listed)})" if listed else ""
    raise SlipwayError(f"no API server given: set api_url (slipway_kube_api_url) or kubeconfig{missing}")


def load_connection(params, environ=None, service_account_dir=SERVICE_ACCOUNT_DIR):
    """Build a :class:`Connection` from the kube connection options (see ``args.KUBE_CONNECTION_SPEC``).

    An exec credential plugin runs here, once, so that a missing or failing plugin stops the run before any request.
    """
    environ = os.environ if environ is None else environ
    conn = _configured(params, environ, service_account_dir)
    if params.get("api_url"):
        conn.server = params["api_url"]
        conn.source = "options" if conn.source == "options" else conn.source + " with api_url from options"
    for option, attribute in (("ca_cert", "ca_file"), ("client_cert", "cert_file"), ("client_key", "key_file")):
        if params.get(option):
            setattr(conn, attribute, params[option])
            setattr(conn, attribute.replace("_file", "_data"), None)
    if params.get("api_token"):
        conn.token, conn.token_file = params["api_token"], None
    if conn.token or conn.token_file:
        conn.exec_plugin = None  # as in kubectl, a static token wins over the plugin
    if params.get("validate_certs") is False:
        conn.validate_certs = False
    if params.get("request_timeout"):
        conn.request_timeout = float(params["request_timeout"])
    has_certificate = bool(conn.cert_file or conn.cert_data)
    if conn.auth_provider and not (conn.token or conn.token_file or has_certificate):
        replacement = AUTH_PROVIDER_REPLACEMENTS.get(conn.auth_provider, "the cluster's exec credential plugin")
        raise SlipwayError(f"{conn.source} authenticates with the auth-provider {conn.auth_provider!r}, which kubectl "
                           f"and Slipway no longer run; use {replacement}",
                           hint="or give a client certificate or api_token")
    if conn.exec_plugin is not None:
        credential = conn.exec_plugin.credential()
        if credential.cert_data and not has_certificate:
            conn.cert_data, conn.key_data = credential.cert_data, credential.key_data
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
    conn.proxy_url = proxy_for(conn.server, conn.proxy_url, environ)
    return conn
