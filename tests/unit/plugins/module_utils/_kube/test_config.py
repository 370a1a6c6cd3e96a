"""Kubeconfig loading: explicit options win, relative paths resolve, several files merge, exec plugins run (real
programs written into tmp), the pod's service account, proxies; bad input is named."""

from __future__ import annotations

import base64
import json
import os
import sys

import pytest
import yaml
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
from ansible_collections.slipway.platform.plugins.module_utils._kube.exec_credential import parse_timestamp
from ansible_collections.slipway.platform.plugins.module_utils._kube.proxy import proxy_for


def kubeconfig(tmp_path, user=None, cluster=None):
    (tmp_path / "ca.crt").write_text("CA")
    config = {"current-context": "ctx",
              "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
              "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:6443",
                                                                "certificate-authority": "ca.crt"}}],
              "users": [{"name": "u", "user": user or {"token": "t0k"}}]}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_kubeconfig_values_and_relative_paths(tmp_path):
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path)}, environ={})
    assert conn.server == "https://127.0.0.1:6443"
    assert conn.ca_file == str(tmp_path / "ca.crt")
    assert conn.current_token() == "t0k"


def test_explicit_options_beat_the_kubeconfig(tmp_path):
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path), "api_url": "https://10.0.0.1:6443/",
                            "api_token": "other", "validate_certs": False, "request_timeout": 3}, environ={})
    assert (conn.server, conn.token, conn.validate_certs, conn.request_timeout) == (
        "https://10.0.0.1:6443", "other", False, 3.0)


def test_inline_certificate_data_is_decoded(tmp_path):
    user = {"client-certificate-data": base64.b64encode(b"CERT").decode(),
            "client-key-data": base64.b64encode(b"KEY").decode()}
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path, user=user)}, environ={})
    assert (conn.cert_data, conn.key_data) == (b"CERT", b"KEY")


def test_kubeconfig_from_the_environment(tmp_path):
    conn = load_connection({}, environ={"KUBECONFIG": kubeconfig(tmp_path)})
    assert conn.source.startswith("kubeconfig ")


def test_token_file_is_reread_each_time(tmp_path):
    token = tmp_path / "token"
    token.write_text("one\n")
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path, user={"tokenFile": "token"})}, environ={})
    assert conn.current_token() == "one"
    token.write_text("two\n")
    assert conn.current_token() == "two"


@pytest.mark.parametrize(("params", "message"), [
    ({"api_url": "127.0.0.1:6443"}, "must start with https://"),
    ({"api_url": "https://x", "ca_cert": "/nonexistent/ca.crt"}, "ca file /nonexistent/ca.crt does not exist"),
    ({"kubeconfig": "/nonexistent/config"}, "cannot read kubeconfig /nonexistent/config"),
    ({"kubeconfig": "KUBECONFIG", "kube_context": "nope"}, "has no context named 'nope'"),
])
def test_bad_settings_are_named(tmp_path, params, message):
    if params.get("kubeconfig") == "KUBECONFIG":
        params = dict(params, kubeconfig=kubeconfig(tmp_path))
    with pytest.raises(SlipwayError, match=message):
        load_connection(params, environ={})


def test_certificate_without_key_is_rejected(tmp_path):
    cert = tmp_path / "c.crt"
    cert.write_text("C")
    with pytest.raises(SlipwayError, match="needs its key"):
        load_connection({"api_url": "https://x", "client_cert": str(cert)}, environ={})


def test_nothing_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SlipwayError, match="no API server given"):
        load_connection({}, environ={})


# ------------------------------------------------------------------------------------ exec credential plugins

PLUGIN = """\
import json, os, pathlib, sys
here = pathlib.Path(__file__).parent
runs = here / "runs"
runs.write_text(str(int(runs.read_text()) + 1) if runs.exists() else "1")
request = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
(here / "seen.json").write_text(json.dumps({"request": request, "argv": sys.argv[1:],
                                            "greeting": os.environ.get("GREETING"), "stdin": sys.stdin.read()}))
status = json.loads(sys.argv[1])
print(json.dumps({"apiVersion": request["apiVersion"], "kind": "ExecCredential", "status": status}))
"""


def exec_plugin(tmp_path, body=PLUGIN, name="plugin.py"):
    """A real plugin program in ``tmp_path``; it counts its runs in ``runs`` and records what it got in seen.json."""
    script = tmp_path / name
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)
    return script


def exec_user(command, status=None, **spec):
    return {"exec": dict({"apiVersion": "client.authentication.k8s.io/v1", "command": str(command),
                          "args": [json.dumps(status or {"token": "exec-token"})], "interactiveMode": "Never"},
                         **spec)}


def runs(tmp_path):
    return int((tmp_path / "runs").read_text()) if (tmp_path / "runs").exists() else 0


def test_exec_plugin_token_is_sent_and_cached_for_the_run(tmp_path):
    status = {"token": "exec-token", "expirationTimestamp": "2999-01-01T00:00:00Z"}
    user = exec_user(exec_plugin(tmp_path), status, env=[{"name": "GREETING", "value": "hi"}])
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path, user=user)}, environ={"PATH": os.environ["PATH"]})
    assert [conn.current_token(), conn.current_token(), conn.current_token()] == ["exec-token"] * 3
    assert runs(tmp_path) == 1
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["request"] == {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                               "spec": {"interactive": False}}  # no cluster: the plugin did not ask for it
    assert (seen["argv"], seen["greeting"], seen["stdin"]) == ([json.dumps(status)], "hi", "")
    assert conn.renewable_token


def test_an_expired_exec_credential_runs_the_plugin_again(tmp_path):
    user = exec_user(exec_plugin(tmp_path), {"token": "t", "expirationTimestamp": "2001-02-03T04:05:06.5+01:00"})
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path, user=user)}, environ={})
    conn.current_token()
    conn.current_token()
    assert runs(tmp_path) == 3  # at load, then once per use: every credential it gives has expired already


def test_a_rejected_exec_token_is_forgotten_once(tmp_path):
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path, user=exec_user(exec_plugin(tmp_path)))}, environ={})
    conn.forget_token("some older token")  # another thread's rejection, already renewed: keep the cache
    assert conn.current_token() == "exec-token" and runs(tmp_path) == 1
    conn.forget_token("exec-token")
    assert conn.current_token() == "exec-token" and runs(tmp_path) == 2


def test_exec_plugin_gets_the_cluster_when_it_asks_and_resolves_against_the_kubeconfig(tmp_path):
    (tmp_path / "bin").mkdir()
    exec_plugin(tmp_path / "bin")
    extension = {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "x"}}
    cluster = {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt", "tls-server-name": "kube",
               "extensions": [extension]}
    user = exec_user("bin/plugin.py", apiVersion="client.authentication.k8s.io/v1beta1", provideClusterInfo=True)
    del user["exec"]["interactiveMode"]  # optional in v1beta1
    load_connection({"kubeconfig": kubeconfig(tmp_path, user=user, cluster=cluster)}, environ={})
    request = json.loads((tmp_path / "bin" / "seen.json").read_text())["request"]
    assert request["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert request["spec"] == {"interactive": False, "cluster": {
        "server": "https://127.0.0.1:6443", "tls-server-name": "kube", "config": {"audience": "x"},
        "certificate-authority-data": base64.b64encode(b"CA").decode()}}


def test_exec_plugin_client_certificate(tmp_path):
    status = {"clientCertificateData": "-----CERT-----", "clientKeyData": "-----KEY-----"}
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path, user=exec_user(exec_plugin(tmp_path), status))},
                           environ={})
    assert (conn.cert_data, conn.key_data, conn.current_token()) == (b"-----CERT-----", b"-----KEY-----", None)


def test_a_static_token_wins_over_the_exec_plugin(tmp_path):
    user = dict(exec_user(exec_plugin(tmp_path)), token="static")
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path, user=user)}, environ={})
    assert (conn.current_token(), runs(tmp_path), conn.exec_plugin) == ("static", 0, None)


def test_a_missing_exec_plugin_names_its_install_hint(tmp_path):
    user = exec_user("slipway-no-such-auth-plugin", installHint="Install it with: apt-get install no-such-plugin")
    with pytest.raises(SlipwayError) as err:
        load_connection({"kubeconfig": kubeconfig(tmp_path, user=user)}, environ={"PATH": str(tmp_path)})
    assert "exec plugin 'slipway-no-such-auth-plugin' of user 'u'" in err.value.msg
    assert "is not installed" in err.value.msg
    assert err.value.details["hint"] == "Install it with: apt-get install no-such-plugin"


def test_a_failing_exec_plugin_shows_its_stderr_never_its_stdout(tmp_path):
    script = exec_plugin(tmp_path, "import sys\nprint('secret-token-on-stdout')\n"
                                   "sys.stderr.write('error: the SSO session expired, run aws sso login\\n')\n"
                                   "sys.exit(3)\n")
    with pytest.raises(SlipwayError) as err:
        load_connection({"kubeconfig": kubeconfig(tmp_path, user=exec_user(script))}, environ={})
    assert "failed with exit status 3: error: the SSO session expired, run aws sso login" in err.value.msg
    assert "secret-token-on-stdout" not in str(err.value.msg) + str(err.value.details)


@pytest.mark.parametrize(("body", "message"), [
    ("print('not json secret')", "did not print an ExecCredential in JSON"),
    ("import json; print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1', "
     "'kind': 'ExecCredential', 'status': {'token': 'secret'}}))", "answered with apiVersion"),
    ("import json; print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
     "'kind': 'ExecCredential', 'status': {}}))", "gave neither a token nor a client certificate"),
    ("import json; print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', "
     "'status': {'token': 'secret', 'expirationTimestamp': 'tomorrow'}}))", "not RFC 3339"),
])
def test_bad_exec_plugin_answers_are_named_without_the_secret(tmp_path, body, message):
    with pytest.raises(SlipwayError, match=message) as err:
        load_connection({"kubeconfig": kubeconfig(tmp_path, user=exec_user(exec_plugin(tmp_path, body)))},
                        environ={})
    assert "secret" not in err.value.msg


@pytest.mark.parametrize(("spec", "message"), [
    ({"interactiveMode": "Always"}, "needs a terminal"),
    ({"apiVersion": "client.authentication.k8s.io/v1alpha1"}, "Slipway speaks client.authentication.k8s.io/v1"),
])
def test_exec_plugins_slipway_cannot_run_are_refused_before_running(tmp_path, spec, message):
    with pytest.raises(SlipwayError, match=message):
        load_connection({"kubeconfig": kubeconfig(tmp_path, user=exec_user(exec_plugin(tmp_path), **spec))},
                        environ={})
    assert runs(tmp_path) == 0


@pytest.mark.parametrize(("provider", "replacement"), [
    ("gcp", "gke-gcloud-auth-plugin"), ("azure", "kubelogin"), ("oidc", "kubelogin"), ("custom", "exec"),
])
def test_auth_providers_name_the_exec_plugin_that_replaces_them(tmp_path, provider, replacement):
    user = {"auth-provider": {"name": provider, "config": {"id-token": "secret"}}}
    with pytest.raises(SlipwayError, match=f"auth-provider '{provider}'.*{replacement}"):
        load_connection({"kubeconfig": kubeconfig(tmp_path, user=user)}, environ={})


@pytest.mark.parametrize(("text", "seconds"), [
    ("1970-01-01T00:01:00Z", 60.0), ("1970-01-01T01:00:00+01:00", 0.0), ("1970-01-01T00:00:00.25-00:30", 1800.25),
])
def test_expiration_timestamps(text, seconds):
    assert parse_timestamp(text) == seconds


# ------------------------------------------------------------------------------------- several kubeconfigs

def test_kubeconfig_paths_are_merged_as_kubectl_merges_them(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "config").write_text(yaml.safe_dump({  # no current-context here: it comes from the second file
        "clusters": [{"name": "c", "cluster": {"server": "https://first:6443", "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u", "user": {"tokenFile": "token"}}]}))
    (first / "ca.crt").write_text("CA")
    (first / "token").write_text("first-token")
    (second / "config").write_text(yaml.safe_dump({
        "current-context": "ctx",
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "shop"}}],
        "clusters": [{"name": "c", "cluster": {"server": "https://second:6443"}}],  # the first file's c wins
        "users": [{"name": "u", "user": {"token": "second"}}]}))
    paths = [str(first / "config"), str(tmp_path / "missing"), str(second / "config")]
    conn = load_connection({}, environ={"KUBECONFIG": os.pathsep.join(paths)})
    assert (conn.server, conn.ca_file, conn.current_token(), conn.namespace) == (
        "https://first:6443", str(first / "ca.crt"), "first-token", "shop")
    assert conn.source == f"kubeconfig {first / 'config'}{os.pathsep}{second / 'config'} (context ctx)"
    with pytest.raises(SlipwayError, match="has no context named 'other'"):
        load_connection({"kube_context": "other"}, environ={"KUBECONFIG": os.pathsep.join(paths)})


def test_kubeconfig_paths_that_do_not_exist_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    kubeconfig(tmp_path / ".kube")  # ~/.kube/config is not read when $KUBECONFIG is set, as in kubectl
    with pytest.raises(SlipwayError, match="none of the files in \\$KUBECONFIG exists \\(/nowhere/a\\)"):
        load_connection({}, environ={"KUBECONFIG": "/nowhere/a"})


# ---------------------------------------------------------------------------------------------- in a pod

def service_account(tmp_path):
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "token").write_text("pod-token\n")
    (folder / "ca.crt").write_text("CA")
    (folder / "namespace").write_text("agents")
    return folder


def test_in_cluster_service_account(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = service_account(tmp_path)
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    conn = load_connection({}, environ=environ, service_account_dir=str(folder))
    assert (conn.server, conn.ca_file, conn.namespace, conn.current_token()) == (
        "https://10.96.0.1:443", str(folder / "ca.crt"), "agents", "pod-token")
    (folder / "token").write_text("rotated")
    assert conn.current_token() == "rotated" and conn.renewable_token
    environ["KUBERNETES_SERVICE_HOST"] = "fd00::1"
    assert load_connection({}, environ=environ, service_account_dir=str(folder)).server == "https://[fd00::1]:443"


def test_a_kubeconfig_wins_over_the_pod_and_a_pod_without_token_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(SlipwayError, match="no service account token at /nowhere/token"):
        load_connection({}, environ=environ, service_account_dir="/nowhere")
    environ["KUBECONFIG"] = kubeconfig(tmp_path)
    assert load_connection({}, environ=environ, service_account_dir="/nowhere").server == "https://127.0.0.1:6443"


# ------------------------------------------------------------------------------ proxies and tls-server-name

def test_cluster_proxy_url_and_tls_server_name(tmp_path):
    cluster = {"server": "https://10.0.0.1:6443", "tls-server-name": "kubernetes.default",
               "proxy-url": "socks5://proxy.corp:1080"}
    conn = load_connection({"kubeconfig": kubeconfig(tmp_path, cluster=cluster)},
                           environ={"HTTPS_PROXY": "http://env-proxy:3128"})
    assert (conn.tls_server_name, conn.proxy_url) == ("kubernetes.default", "socks5://proxy.corp:1080")


@pytest.mark.parametrize(("server", "environ", "proxy"), [
    ("https://api.corp:6443", {"HTTPS_PROXY": "http://p:3128", "https_proxy": "http://lower:1"}, "http://p:3128"),
    ("https://api.corp:6443", {"https_proxy": "p:3128"}, "http://p:3128"),
    ("http://api.corp:8080", {"HTTPS_PROXY": "http://p:3128"}, None),
    ("http://api.corp:8080", {"HTTP_PROXY": "http://p:3128"}, "http://p:3128"),
    ("https://127.0.0.1:6443", {"HTTPS_PROXY": "http://p:3128"}, None),
    ("https://localhost:6443", {"HTTPS_PROXY": "http://p:3128"}, None),
    ("https://api.corp:6443", {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "example.com, .corp"}, None),
    ("https://api.corp:6443", {"HTTPS_PROXY": "http://p:3128", "no_proxy": "api.corp:6443"}, None),
    ("https://api.corp:6443", {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "api.corp:443"}, "http://p:3128"),
    ("https://10.1.2.3:6443", {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "10.0.0.0/8"}, None),
    ("https://10.1.2.3:6443", {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "corp,192.168.0.0/16"}, "http://p:3128"),
    ("https://x.api.corp", {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "*"}, None),
])
def test_proxy_from_the_environment(server, environ, proxy):
    assert proxy_for(server, None, environ) == proxy


def test_a_proxy_url_slipway_cannot_use_is_named_without_its_password(tmp_path):
    cluster = {"server": "https://10.0.0.1:6443", "proxy-url": "ftp://user:hunter2@proxy:21"}
    with pytest.raises(SlipwayError, match="is not a proxy URL") as err:
        load_connection({"kubeconfig": kubeconfig(tmp_path, cluster=cluster)}, environ={})
    assert "hunter2" not in err.value.msg
