"""Artifacts onto a host (the kube_artifacts module's logic) in a temporary folder: verified before installed."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._provision.artifacts import install

KUBELET = b"#!/bin/sh\necho kubelet v1\n"
KUBELET_2 = b"#!/bin/sh\necho kubelet v2\n"
ETCD = b"#!/bin/sh\necho etcd\n"


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Source:
    """What a files repo serves, and which URLs were fetched."""

    def __init__(self, files):
        self.files = files
        self.fetched = []

    def __call__(self, url, timeout):
        self.fetched.append(url)
        if url not in self.files:
            raise OSError(f"HTTP Error 404: Not Found ({url})")
        return io.BytesIO(self.files[url])


@pytest.fixture
def host(tmp_path):
    return {"staging_dir": str(tmp_path / "cache" / "artifacts"), "install_dir": str(tmp_path / "bin")}


def entries(**named):
    return {name.replace("_", "-"): {"url": f"http://files.lab/{name}", "sha256": sha(data)}
            for name, data in named.items()}


def test_a_bare_host_gets_verified_files_and_links_then_a_second_run_changes_nothing(host):
    artifacts = entries(kubelet=KUBELET, etcd=ETCD)
    source = Source({"http://files.lab/kubelet": KUBELET, "http://files.lab/etcd": ETCD})
    first = install(artifacts, ["kubelet", "etcd"], fetch=source, **host)
    assert first["changed"] and first["downloaded"] == first["installed"] == ["kubelet", "etcd"]
    link = os.path.join(host["install_dir"], "kubelet")
    assert os.readlink(link) == os.path.join(host["staging_dir"], f"kubelet-{sha(KUBELET)}")
    with open(link, "rb") as binary:
        assert binary.read() == KUBELET
    assert os.stat(link).st_mode & 0o777 == 0o755
    assert os.stat(host["staging_dir"]).st_mode & 0o777 == 0o755

    again = install(artifacts, ["kubelet", "etcd"], fetch=source, **host)
    assert again == {"changed": False, "downloaded": [], "installed": [], "diff": {"before": {}, "after": {}}}
    assert len(source.fetched) == 2  # nothing downloaded the second time


def test_a_checksum_that_does_not_match_installs_nothing_and_leaves_nothing_behind(host):
    artifacts = entries(kubelet=KUBELET, etcd=ETCD)
    source = Source({"http://files.lab/kubelet": KUBELET, "http://files.lab/etcd": b"something else"})
    with pytest.raises(SlipwayError) as caught:
        install(artifacts, ["kubelet", "etcd"], fetch=source, **host)
    assert "etcd" in caught.value.msg and sha(ETCD) in caught.value.msg and sha(b"something else") in caught.value.msg
    assert "nothing was installed" in caught.value.msg or "before anything was installed" in caught.value.msg
    assert caught.value.details["failed"] == ["etcd"]
    assert not os.path.exists(host["install_dir"])  # the good kubelet download was not linked either
    assert sorted(os.listdir(host["staging_dir"])) == [f"kubelet-{sha(KUBELET)}"]  # no partial file


def test_an_unreachable_url_is_named_with_its_artifact(host):
    artifacts = entries(kubelet=KUBELET)
    with pytest.raises(SlipwayError, match="kubelet: http://files.lab/kubelet: HTTP Error 404"):
        install(artifacts, ["kubelet"], fetch=Source({}), **host)


@pytest.mark.parametrize("entry", [None, {"url": "http://files.lab/x"}, {"url": "http://x", "sha256": "ABC"},
                                   {"sha256": "0" * 64}])
def test_an_entry_the_source_does_not_list_properly_is_refused_before_any_change(host, entry):
    artifacts = {} if entry is None else {"kubelet": entry}
    with pytest.raises(SlipwayError, match="no usable entry for kubelet.*64 lowercase hex"):
        install(artifacts, ["kubelet"], fetch=Source({}), **host)
    assert not os.path.exists(os.path.dirname(host["staging_dir"]))


def test_check_mode_reports_what_would_change_and_writes_nothing(host):
    artifacts = entries(kubelet=KUBELET)
    source = Source({"http://files.lab/kubelet": KUBELET})
    result = install(artifacts, ["kubelet"], fetch=source, check_mode=True, **host)
    assert result["changed"] and result["downloaded"] == result["installed"] == ["kubelet"]
    assert source.fetched == [] and not os.path.exists(os.path.dirname(host["staging_dir"]))


def test_a_new_sha256_is_a_new_file_and_a_changed_link_with_its_diff(host):
    source = Source({"http://files.lab/kubelet": KUBELET})
    install(entries(kubelet=KUBELET), ["kubelet"], fetch=source, **host)
    source.files["http://files.lab/kubelet"] = KUBELET_2
    result = install(entries(kubelet=KUBELET_2), ["kubelet"], fetch=source, **host)
    link = os.path.join(host["install_dir"], "kubelet")
    assert result["installed"] == ["kubelet"]
    assert result["diff"] == {"before": {link: os.path.join(host["staging_dir"], f"kubelet-{sha(KUBELET)}")},
                              "after": {link: os.path.join(host["staging_dir"], f"kubelet-{sha(KUBELET_2)}")}}
    with open(link, "rb") as binary:
        assert binary.read() == KUBELET_2


def test_a_file_in_the_way_of_the_link_is_replaced(host):
    os.makedirs(host["install_dir"])
    path = os.path.join(host["install_dir"], "kubelet")
    with open(path, "wb") as stale:
        stale.write(b"an old binary copied by hand")
    result = install(entries(kubelet=KUBELET), ["kubelet"], fetch=Source({"http://files.lab/kubelet": KUBELET}),
                     **host)
    assert result["installed"] == ["kubelet"] and os.path.islink(path)
    assert result["diff"]["before"] == {path: "(a file, not a link)"}
