"""Stage: single sign-on for people - dex, a real OIDC identity service, on 127.0.0.1, trusted by the API server.

dex is built from the module pinned by hack/dex/go.mod and runs as a stack process, like etcd: the API server's
authentication depends on it, so it is part of the cluster, not a system a context delivers. Its users are dex's
static users (bcrypt hashes; passwords generated once into .stack/secrets), each with the groups a company's
directory would give; the API server maps the ID token's ``email`` and ``groups`` claims to ``oidc:``-prefixed
users and groups, which the contexts' generated roles bind (docs/security.md).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request

from stacklib.config import BIN, LOGS, PKI, SECRETS, STATE
from stacklib.pki import issue_certificate
from stacklib.proc import StepFailed, running_pid, start_daemon, step, wait_until
from stacklib.secrets import generated_secret, write_private

PORT = 5556
ISSUER = f"https://127.0.0.1:{PORT}/dex"
CLIENT_ID = "slipway"
PREFIX = "oidc:"
# user -> the groups their ID token carries (without the API server's prefix)
USERS = {"viewer": ["slipway:viewers"], "deployer": ["slipway:deployers"]}
CONFIG = STATE / "sso" / "dex.json"
AUTHENTICATION_CONFIG = STATE / "sso" / "authentication.json"


def user_password(user: str) -> str:
    return generated_secret(f"sso-{user}-password")


def client_secret() -> str:
    return generated_secret("sso-client-secret")


def _bcrypt(password: str) -> str:
    done = subprocess.run(["htpasswd", "-niBC", "10", "user"], input=password, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise StepFailed(f"htpasswd could not hash a password (apache2-utils installed?): {done.stderr.strip()}")
    return done.stdout.strip().split(":", 1)[1]


def dex_config() -> dict:
    return {
        "issuer": ISSUER,
        "storage": {"type": "memory"},
        "web": {"https": f"127.0.0.1:{PORT}", "tlsCert": str(PKI / "sso-serving.crt"),
                "tlsKey": str(PKI / "sso-serving.key")},
        "logger": {"level": "info", "format": "json"},
        # People sign in with a password here; a company's dex would use its directory's connector instead.
        "oauth2": {"passwordConnector": "local", "skipApprovalScreen": True,
                   "grantTypes": ["authorization_code", "refresh_token", "password"]},
        "enablePasswordDB": True,
        "staticClients": [{"id": CLIENT_ID, "name": "Slipway", "secret": client_secret(),
                           "redirectURIs": ["http://127.0.0.1:8000", "http://localhost:8000"]}],
        "staticPasswords": [{"email": f"{user}@slipway.local", "username": user, "userID": f"slipway-{user}",
                             "hash": _bcrypt(user_password(user)), "groups": groups}
                            for user, groups in USERS.items()],
    }


def authentication_config() -> dict:
    """The API server's structured authentication: trust dex's ID tokens for the ``slipway`` audience."""
    return {
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": {"url": ISSUER, "audiences": [CLIENT_ID],
                       "certificateAuthority": (PKI / "ca.crt").read_text()},
            "claimMappings": {"username": {"claim": "email", "prefix": PREFIX},
                              "groups": {"claim": "groups", "prefix": PREFIX}},
        }],
    }


def write_authentication_config() -> str:
    AUTHENTICATION_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    AUTHENTICATION_CONFIG.write_text(json.dumps(authentication_config(), indent=2))
    return str(AUTHENTICATION_CONFIG)


def discovery_answers() -> bool:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    try:
        with urllib.request.urlopen(f"{ISSUER}/.well-known/openid-configuration", timeout=2,  # noqa: S310 - https only
                                    context=context) as response:
            return json.load(response).get("issuer") == ISSUER
    except (urllib.error.URLError, OSError, ValueError):
        return False


def sso_up() -> bool:
    return running_pid("dex") is not None and discovery_answers()


@step(f"single sign-on (dex at {ISSUER})")
def ensure_sso() -> str:
    if sso_up():
        return "already running"
    issue_certificate("sso-serving", "/CN=slipway-sso", client=False, server_names=["127.0.0.1", "localhost"])
    write_private(CONFIG, json.dumps(dex_config(), indent=2))  # holds the client secret and password hashes
    start_daemon("dex", [str(BIN / "dex"), "serve", str(CONFIG)])
    wait_until(discovery_answers, "dex's OIDC discovery", LOGS / "dex.log", timeout=30, daemon="dex")
    return f"users {', '.join(USERS)}; passwords in {SECRETS}/sso-<user>-password"
