# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy to the API server, chosen as kubectl (Go's ``net/http``) chooses it, and the urllib3 manager for it.

A cluster's ``proxy-url`` wins; without one ``HTTPS_PROXY`` (``HTTP_PROXY`` for an ``http://`` server, upper case
before lower case) applies unless ``NO_PROXY`` names the host (``*``, a host or domain suffix with or without a
leading dot, an IP, a CIDR, optionally ``:port``). Loopback addresses and ``localhost`` are never proxied.
``http``/``https`` proxies tunnel with CONNECT; ``socks5``/``socks5h`` need PySocks (``pip install pysocks``).
"""

from __future__ import annotations

import base64
import ipaddress
import warnings
from urllib.parse import unquote, urlsplit

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

try:
    import urllib3
except ImportError:  # pragma: no cover - KubeClient reports it
    urllib3 = None

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def _env(environ, *names):
    return next((environ[name] for name in names if environ.get(name)), None)


def _is_loopback(host):
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bypassed(host, port, no_proxy):
    """Whether a ``NO_PROXY`` list names ``host:port``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if address is not None and address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, entry_port = entry.rsplit(":", 1) if entry.count(":") == 1 else (entry, "")
        if entry_port and entry_port != str(port):
            continue
        name = name.strip("[]")
        if name == host or (name.lstrip(".") and host.endswith("." + name.lstrip("."))):
            return True
    return False


def proxy_for(server, proxy_url=None, environ=None):
    """The proxy URL through which to reach the API server at ``server``, or None for a direct connection."""
    if proxy_url:
        return check_proxy_url(proxy_url, "the cluster's proxy-url")
    environ = environ or {}
    parts = urlsplit(server)
    host = (parts.hostname or "").lower()
    if not host or _is_loopback(host):
        return None
    names = ("HTTPS_PROXY", "https_proxy") if parts.scheme == "https" else ("HTTP_PROXY", "http_proxy")
    proxy = _env(environ, *names)
    if not proxy:
        return None
    no_proxy = _env(environ, "NO_PROXY", "no_proxy") or ""
    if _bypassed(host, parts.port or (443 if parts.scheme == "https" else 80), no_proxy):
        return None
    if "://" not in proxy:  # Go reads a bare host:port as an http proxy
        proxy = "http://" + proxy
    return check_proxy_url(proxy, f"${names[0]}")


def check_proxy_url(url, where):
    scheme = urlsplit(url).scheme
    if scheme not in PROXY_SCHEMES or not urlsplit(url).hostname:
        raise SlipwayError(f"{where} {_without_password(url)!r} is not a proxy URL Slipway can use",
                           hint=f"give {', '.join(PROXY_SCHEMES)}://host:port")
    return url


def _without_password(url):
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def pool_manager(proxy_url, **kwargs):
    """A urllib3 manager with ``kwargs`` (TLS settings, pool size) that goes through ``proxy_url`` when there is one."""
    if not proxy_url:
        return urllib3.PoolManager(**kwargs)
    parts = urlsplit(proxy_url)
    if parts.scheme.startswith("socks"):
        try:
            with warnings.catch_warnings():  # urllib3 warns before it raises: the error below says it all
                warnings.simplefilter("ignore")
                from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise SlipwayError(f"the proxy {_without_password(proxy_url)} is a SOCKS proxy, which needs the Python "
                               "library PySocks", hint="pip install pysocks (or urllib3[socks])") from None
        return SOCKSProxyManager(proxy_url, **kwargs)
    headers = {}
    if parts.username is not None:
        user_password = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(user_password.encode()).decode("ascii")
    return urllib3.ProxyManager(proxy_url, proxy_headers=headers, **kwargs)
