"""The stack's single sign-on (dex) for the lab's clusters: the API server on a lab machine trusts dex's ID tokens.

dex listens on the controller's 127.0.0.1:5556 only and its tokens name that address as their issuer (``iss``);
its serving certificate has 127.0.0.1 and localhost only. A lab machine cannot reach the controller's loopback, and
the API server must reach the issuer as the tokens name it: the discovery document it fetches says
``issuer: https://127.0.0.1:5556/dex`` and ``jwks_uri: https://127.0.0.1:5556/dex/keys``, so a different
``discoveryURL`` alone would still leave the keys at an address the machine does not have. Changing dex's issuer or
certificate means restarting the shared dex (its storage is in memory: everyone's sessions). Instead, two relays
pass bytes unchanged, so TLS runs end to end from the API server to dex and dex's own certificate is what is checked:

- on the controller, a TCP forwarder from the lab gateway's port 5556 to dex (the registry's, lablib/forward.py);
- in every machine, the socket unit ``slipway-lab-sso.socket`` on the machine's own 127.0.0.1:5556, whose service is
  systemd's ``systemd-socket-proxyd`` to the gateway. What a real site has instead: an identity provider the API
  server reaches at its issuer URL, and nothing here.

The inventory gets ``slipway_control_plane_oidc`` (group_vars/all/sso.yml) for dex's issuer, the ``slipway`` client
and the stack's CA, as the stack's own API server has it (stacklib/sso.py).
"""

from __future__ import annotations

import socket
import ssl

from stacklib.config import LOGS, PKI
from stacklib.docker import docker
from stacklib.proc import running_pid, start_daemon, step, wait_until
from stacklib.sso import CLIENT_ID, ISSUER, PORT, PREFIX, sso_up

from lablib.config import GATEWAY, SSO_FORWARD_DAEMON, machine_name

RELAY_UNIT = "slipway-lab-sso"
RELAY_FILES = {
    f"/etc/systemd/system/{RELAY_UNIT}.socket": f"""\
[Unit]
Description=Lab: the controller's dex at this machine's 127.0.0.1:{PORT}, as its tokens name it

[Socket]
ListenStream=127.0.0.1:{PORT}

[Install]
WantedBy=sockets.target
""",
    f"/etc/systemd/system/{RELAY_UNIT}.service": f"""\
[Unit]
Description=Lab: relay to the controller's SSO through the lab gateway (hack/lablib/sso.py)
Requires={RELAY_UNIT}.socket
After={RELAY_UNIT}.socket

[Service]
ExecStart=/lib/systemd/systemd-socket-proxyd {GATEWAY}:{PORT}
""",
}


def forward_answers() -> bool:
    """dex answers a TLS handshake through the gateway forwarder, with its own certificate for 127.0.0.1."""
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    try:
        with socket.create_connection((GATEWAY, PORT), timeout=2) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1"):
            return True
    except (OSError, ssl.SSLError):
        return False


def oidc_vars() -> dict:
    """What the lab's control plane trusts (roles/control_plane slipway_control_plane_oidc)."""
    return {"slipway_control_plane_oidc": {
        "issuer_url": ISSUER, "client_id": CLIENT_ID, "ca": (PKI / "ca.crt").read_text(),
        "username_claim": "email", "groups_claim": "groups", "username_prefix": PREFIX, "groups_prefix": PREFIX}}


def ensure_relay(index: int) -> bool:
    """The machine's relay unit, each file written only when it differs; True when something changed."""
    name = machine_name(index)
    changed = False
    for path, text in RELAY_FILES.items():
        written = docker("exec", "-i", name, "sh", "-c", f"cat > {path}.new && if cmp -s {path}.new {path}; then "
                         f"rm {path}.new; else mv {path}.new {path}; echo changed; fi", stdin=text.encode())
        changed = changed or "changed" in written.stdout.decode()
    if changed:
        docker("exec", name, "systemctl", "daemon-reload")
        docker("exec", name, "systemctl", "restart", f"{RELAY_UNIT}.socket")
    docker("exec", name, "systemctl", "enable", "--now", "--quiet", f"{RELAY_UNIT}.socket")
    return changed


@step("lab: single sign-on relays (the stack's dex for the lab's API servers)")
def ensure_sso(launcher: list[str], indexes: list[int]) -> str:
    if not sso_up():
        return f"skipped: the stack's dex ({ISSUER}) is not running, so the lab's clusters trust no OIDC issuer"
    if not (running_pid(SSO_FORWARD_DAEMON) and forward_answers()):
        start_daemon(SSO_FORWARD_DAEMON, [*launcher, "forward-registry", "--listen", f"{GATEWAY}:{PORT}",
                                          "--to", f"127.0.0.1:{PORT}"])
        wait_until(forward_answers, "SSO forwarder", LOGS / f"{SSO_FORWARD_DAEMON}.log", timeout=20,
                   daemon=SSO_FORWARD_DAEMON)
    changed = [machine_name(index) for index in indexes if ensure_relay(index)]
    return (f"{GATEWAY}:{PORT} -> 127.0.0.1:{PORT}; relay on 127.0.0.1:{PORT} in every machine"
            + (f" (written in {', '.join(changed)})" if changed else ""))
