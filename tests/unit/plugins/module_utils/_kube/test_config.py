"""Kubeconfig loading: explicit options win, relative paths resolve, bad input is named."""

from __future__ import annotations

import base64

import pytest
import yaml
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection


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
