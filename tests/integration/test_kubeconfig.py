"""Kubeconfigs as real clusters write them, on the local stack: an exec credential plugin (a real program written
into tmp, handing out a ServiceAccount token made with ``kubectl create token``), a token file, ``$KUBECONFIG``
with two paths, ``tls-server-name`` and a ``proxy-url``.

The identity the plugin hands out is the only credential in its kubeconfig: a delivery that succeeds proves the
plugin's token was sent. What was written is checked as admin, independently of what the engine says.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from fixtures.deliver.support import (
    API_URL,
    KubeClient,
    Options,
    SlipwayError,
    configmap,
    deliver,
    load_connection,
    system,
)
from test_faults import service_account_identity
from test_rollback_reliability import journal

ROOT = Path(__file__).resolve().parents[2]
EXEC_API = "client.authentication.k8s.io/v1"
INSTALL_HINT = "Install slipway-test-login: it is written by the test that needs it"
# The plugin appends a line to plugin-runs each time it runs and hands out the token in plugin-token (both next to
# it), valid for ten minutes, as aws eks get-token or kubelogin hand out theirs.
PLUGIN = f"""\
import datetime, json, pathlib
here = pathlib.Path(__file__).parent
with (here / "plugin-runs").open("a") as runs:
    runs.write("run\\n")
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
print(json.dumps({{"apiVersion": "{EXEC_API}", "kind": "ExecCredential",
                  "status": {{"token": (here / "plugin-token").read_text().strip(),
                             "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}))
"""


@pytest.fixture
def identity(stack_dir, kubectl, ns, tmp_path):
    """A ServiceAccount with the deployer's rights in ``ns`` and the journal's namespace, tokens bound to Secrets."""
    with service_account_identity(stack_dir, kubectl, ns, tmp_path) as account:
        yield account


def kubeconfig_file(path, stack_dir, user, cluster=None, current=True):
    """A kubeconfig at ``path`` for the stack's API server with ``user`` (entries named ``stack``)."""
    config = {"apiVersion": "v1", "kind": "Config",
              "clusters": [{"name": "stack", "cluster": dict({"server": API_URL, "certificate-authority": str(
                  stack_dir / "pki" / "ca.crt")}, **(cluster or {}))}],
              "contexts": [{"name": "stack", "context": {"cluster": "stack", "user": "stack"}}]}
    if user is not None:
        config["users"] = [{"name": "stack", "user": user}]
    if current:
        config["current-context"] = "stack"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def exec_user(command, **spec):
    return {"exec": dict({"apiVersion": EXEC_API, "command": str(command), "interactiveMode": "IfAvailable",
                          "installHint": INSTALL_HINT}, **spec)}


def write_plugin(folder, token):
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "slipway-test-login"
    script.write_text(f"#!{sys.executable}\n{PLUGIN}")
    script.chmod(0o755)
    (folder / "plugin-token").write_text(token)
    return script


def plugin_runs(script):
    runs = script.parent / "plugin-runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def release_info(context, env=None, **params):
    """The release_info module in a process of its own (one module run), as a playbook task runs it."""
    args = " ".join(f"{key}={value}" for key, value in dict(params, context=context).items())
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-o", "-m", "slipway.platform.release_info",
         "-a", args, "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
        env=dict(env or os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1"))
    output = result.stdout + result.stderr
    marker = output.find(" => {")  # -o: "localhost | SUCCESS => {...}" on one line
    return result.returncode, json.loads(output[marker + 4:].splitlines()[0]) if marker >= 0 else output


def deliver_value(client, namespace, context, value):
    """Deliver one ConfigMap through the engine's entry point (as the deliver module does) with ``client``."""
    return deliver(client, [system("app", namespace, configmap("settings", value=value))],
                   Options(context=context, wait_timeout=90, lock_duration=10))


def live_value(kubectl, namespace):
    return json.loads(kubectl("get", "configmap", "settings", "-n", namespace, "-o", "json").stdout)["data"]["value"]


def test_an_exec_plugin_runs_once_per_run_and_again_when_its_token_is_revoked(
        stack_dir, kubectl, ns, context, identity, tmp_path):
    first = identity.issue("exec-first")
    script = write_plugin(tmp_path / "plugin", first)
    kubeconfig = kubeconfig_file(tmp_path / "exec.kubeconfig", stack_dir, exec_user(script))

    client = KubeClient(load_connection({"kubeconfig": str(kubeconfig)}))  # one run, two deliveries
    try:
        result = deliver_value(client, ns, context, "1")
        assert result["changed"] and result["revision"] == 1
        assert client.requests > 3 and plugin_runs(script) == 1  # many requests, one plugin run: the cache held
        assert live_value(kubectl, ns) == "1"

        # The token is revoked and the plugin now hands out another: the cached one is rejected, the plugin runs
        # again and the request is sent again with the new token.
        identity.revoke("exec-first", first)
        (script.parent / "plugin-token").write_text(identity.issue("exec-second"))
        result = deliver_value(client, ns, context, "2")
    finally:
        client.close()
    assert result["changed"] and result["revision"] == 2
    assert (client.unauthorized, client.token_refreshes) == (1, 1)
    assert plugin_runs(script) == 2
    assert live_value(kubectl, ns) == "2"
    assert [r["revision"] for r in journal(stack_dir, context)] == [1, 2]

    # A module run reads the journal through the same kubeconfig, starting the plugin once.
    code, answer = release_info(context, kubeconfig=kubeconfig)
    assert code == 0, answer
    assert [r["revision"] for r in answer["releases"]] == [1, 2]
    assert plugin_runs(script) == 3


def test_a_missing_exec_plugin_fails_with_its_install_hint_before_any_request(stack_dir, context, tmp_path):
    kubeconfig = kubeconfig_file(tmp_path / "missing.kubeconfig", stack_dir, exec_user("slipway-test-login"))
    with pytest.raises(SlipwayError) as err:
        load_connection({"kubeconfig": str(kubeconfig)})
    assert err.value.details["hint"] == INSTALL_HINT
    code, answer = release_info(context, kubeconfig=kubeconfig)
    assert code != 0
    assert "exec plugin 'slipway-test-login' of user 'stack'" in answer["msg"] and "is not installed" in answer["msg"]
    assert INSTALL_HINT in json.dumps(answer)


def test_kubeconfig_with_two_paths_and_a_token_file(stack_dir, kubectl, ns, context, identity, tmp_path):
    """The cluster and context in one file, the user (its token file relative to its own file) in the other."""
    identity.write(identity.issue("file-token"))
    cluster_file = kubeconfig_file(tmp_path / "a" / "cluster.kubeconfig", stack_dir, None)
    user_file = tmp_path / "b" / "user.kubeconfig"
    user_file.parent.mkdir()
    (user_file.parent / "token").symlink_to(identity.token_file)
    user_file.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "elsewhere",
                                         "users": [{"name": "stack", "user": {"tokenFile": "token"}}]}))
    env = dict(os.environ, KUBECONFIG=os.pathsep.join([str(cluster_file), str(tmp_path / "absent"), str(user_file)]))
    with KubeClient(load_connection({"kubeconfig": str(identity.kubeconfig)})) as client:  # its user: tokenFile
        assert deliver_value(client, ns, context, "1")["revision"] == 1
    assert live_value(kubectl, ns) == "1"
    code, answer = release_info(context, env=env)  # no kubeconfig option: $KUBECONFIG, merged
    assert code == 0, answer
    assert [r["revision"] for r in answer["releases"]] == [1]


def test_tls_server_name_is_the_name_the_certificate_is_checked_against(stack_dir, tmp_path):
    pki = stack_dir / "pki"
    user = {"client-certificate": str(pki / "deployer.crt"), "client-key": str(pki / "deployer.key")}
    named = kubeconfig_file(tmp_path / "named.kubeconfig", stack_dir, user, {"tls-server-name": "kubernetes.default"})
    with KubeClient(load_connection({"kubeconfig": str(named)})) as client:
        assert client.get("/version")["gitVersion"].startswith("v1.")
    wrong = kubeconfig_file(tmp_path / "wrong.kubeconfig", stack_dir, user, {"tls-server-name": "not-the-api.example"})
    with KubeClient(load_connection({"kubeconfig": str(wrong)})) as client, pytest.raises(SlipwayError) as err:
        client.get("/version")
    assert "TLS handshake with https://127.0.0.1:6443 failed" in err.value.msg
    assert "not-the-api.example" in err.value.msg


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that tunnels CONNECT requests and remembers where each one went."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.tunnels = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        with contextlib.suppress(OSError):
            while True:
                client, _address = self.listener.accept()
                threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ")
        self.tunnels.append(f"{method} {target}")
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self):
        self.listener.close()


def test_a_clusters_proxy_url_carries_the_requests(stack_dir, tmp_path):
    proxy = ConnectProxy()
    pki = stack_dir / "pki"
    user = {"client-certificate": str(pki / "deployer.crt"), "client-key": str(pki / "deployer.key")}
    kubeconfig = kubeconfig_file(tmp_path / "proxied.kubeconfig", stack_dir, user, {"proxy-url": proxy.url})
    try:
        with KubeClient(load_connection({"kubeconfig": str(kubeconfig)})) as client:
            assert client.get("/version")["gitVersion"].startswith("v1.")
    finally:
        proxy.close()
    assert proxy.tunnels == ["CONNECT 127.0.0.1:6443"]
