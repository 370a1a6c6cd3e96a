"""Stage: the image registry on 127.0.0.1 (docker-registry with htpasswd), and its generated password."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from stacklib.config import LOGS, PORTS, REGISTRY_USER, STATE
from stacklib.proc import run, running_pid, start_daemon, step, wait_until
from stacklib.secrets import generated_secret


def registry_password() -> str:
    return generated_secret("registry-password")


def registry_answers() -> bool:
    url = f"http://127.0.0.1:{PORTS['registry']}/v2/"
    token = base64.b64encode(f"{REGISTRY_USER}:{registry_password()}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - fixed http://127.0.0.1 URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@step("registry")
def ensure_registry() -> str:
    if running_pid("registry") and registry_answers():
        return f"already running on 127.0.0.1:{PORTS['registry']}"
    base = STATE / "registry"
    (base / "data").mkdir(parents=True, exist_ok=True)
    htpasswd = base / "htpasswd"
    run(["htpasswd", "-Bbc", str(htpasswd), REGISTRY_USER, registry_password()], log=LOGS / "registry.log")
    config = base / "config.yml"
    config.write_text(json.dumps({
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(base / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{PORTS['registry']}", "secret": registry_password()},
        "auth": {"htpasswd": {"realm": "slipway-local", "path": str(htpasswd)}},
    }, indent=2))
    start_daemon("registry", ["docker-registry", "serve", str(config)])
    wait_until(registry_answers, "registry", LOGS / "registry.log", timeout=30, daemon="registry")
    return f"started on 127.0.0.1:{PORTS['registry']} (user {REGISTRY_USER})"
