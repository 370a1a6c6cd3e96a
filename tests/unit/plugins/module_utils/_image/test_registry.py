"""Registry HTTP API v2 queries against a fake registry: auth flows, 404, errors without the password."""

from __future__ import annotations

import hashlib
import socket

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import (
    Registry,
    is_loopback,
    validate_repository,
)
from fake_registry import FakeRegistry

DIGEST = "sha256:" + "a" * 64


def test_basic_auth_and_manifest_lookup(fake_registry):
    fake_registry.manifests[("backend", "abc")] = (DIGEST, b"{}")
    client = Registry(fake_registry.address, "slipway", fake_registry.password)
    client.check()
    assert client.manifest_digest("backend", "abc") == DIGEST
    assert client.manifest_digest("backend", "other") is None
    head = [r for r in fake_registry.requests if r[0] == "HEAD"][0]
    assert "application/vnd.docker.distribution.manifest.v2+json" in head[2]["Accept"]


def test_bearer_token_flow():
    registry = FakeRegistry(auth="bearer")
    try:
        registry.manifests[("shop/frontend", "t1")] = (DIGEST, b"{}")
        client = Registry(registry.address, "slipway", registry.password)
        assert client.manifest_digest("shop/frontend", "t1") == DIGEST
        token_request = [r for r in registry.requests if r[1].startswith("/token")][0]
        assert "scope=repository%3Ashop%2Ffrontend%3Apull" in token_request[1]
    finally:
        registry.close()


def test_digest_computed_when_the_header_is_missing():
    registry = FakeRegistry(digest_header=False)
    try:
        registry.manifests[("backend", "t")] = ("ignored", b'{"schemaVersion": 2}')
        client = Registry(registry.address, "slipway", registry.password)
        assert client.manifest_digest("backend", "t") == "sha256:" + hashlib.sha256(b'{"schemaVersion": 2}').hexdigest()
    finally:
        registry.close()


@pytest.mark.parametrize("user,password", [("slipway", "wrong-Sentinel"), ("intruder", "s3cret-Sentinel"),
                                           (None, None)])
def test_wrong_credentials_are_a_clear_error_without_the_password(fake_registry, user, password):
    client = Registry(fake_registry.address, user, password)
    with pytest.raises(SlipwayError) as caught:
        client.check()
    text = caught.value.msg + repr(caught.value.details)
    assert "refused" in text and "HTTP 401" in text
    assert "Sentinel" not in text


def test_unreachable_registry_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nobody listens there
    client = Registry(f"127.0.0.1:{port}", "slipway", "pw", timeout=2)
    with pytest.raises(SlipwayError, match="unreachable"):
        client.check()


def test_schemes_and_validation():
    assert is_loopback("127.0.0.1:5001") and is_loopback("localhost:5000") and not is_loopback("reg.example:443")
    assert Registry("registry.example.com").base == "https://registry.example.com"
    assert Registry("127.0.0.1:5001").base == "http://127.0.0.1:5001"
    for bad in ("http://x", "", "a b"):
        with pytest.raises(SlipwayError, match="host\\[:port\\]"):
            Registry(bad)
    for bad in ("Backend", "-x", "a//b", ""):
        with pytest.raises(SlipwayError, match="not a valid repository"):
            validate_repository(bad)
    validate_repository("shop/backend-api")


def test_basic_credentials_go_with_every_request_after_the_first_challenge(fake_registry):
    client = Registry(fake_registry.address, "slipway", fake_registry.password)
    client.check()
    for name in ("a", "b", "c", "d"):
        assert client.manifest_digest(name, "t") is None
    unauthenticated = [r for r in fake_registry.requests if "Authorization" not in r[2]]
    assert len(unauthenticated) == 1 and len(fake_registry.requests) == 6


def test_a_kept_alive_connection_is_reused(fake_registry):
    from http.server import BaseHTTPRequestHandler

    handler = fake_registry.server.RequestHandlerClass
    assert issubclass(handler, BaseHTTPRequestHandler)
    handler.protocol_version = "HTTP/1.1"  # keep-alive: one connection serves every lookup
    client = Registry(fake_registry.address, "slipway", fake_registry.password)
    client.check()
    first = client._connection("http", fake_registry.address)
    for name in ("a", "b", "c"):
        assert client.manifest_digest(name, "t") is None
    assert client._connection("http", fake_registry.address) is first and first.sock is not None
