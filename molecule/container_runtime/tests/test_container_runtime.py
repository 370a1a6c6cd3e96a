"""What container_runtime left on the lab machine: Debian's containerd running for the CRI with the shared cgroup
driver, the sandbox image imported, a nested container really running, and an image pulled from the stack's
registry through the mirror with the configured credentials (testinfra; the registry side runs on the controller)."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib

import pytest

CONFIG = "/etc/containerd/config.toml"
CRI = 'io.containerd.grpc.v1.cri'
SANDBOX = "slipway.local/pause:1"


@pytest.fixture(scope="module")
def config(host):
    return tomllib.loads(host.file(CONFIG).content_string)


@pytest.fixture(scope="module")
def facts(host):
    return json.loads(host.file("/root/slipway-container-runtime-facts.json").content_string)


def test_debian_packages_are_installed(host):
    for package in ("containerd", "runc", "containernetworking-plugins"):
        assert host.package(package).is_installed, package
    assert host.file("/usr/lib/cni/bridge").exists


def test_containerd_runs_now_and_at_boot(host):
    service = host.service("containerd")
    assert service.is_running and service.is_enabled
    assert host.socket("unix:///run/containerd/containerd.sock").is_listening


def test_the_configuration_holds_a_password_so_only_root_reads_it(host):
    conf = host.file(CONFIG)
    assert (conf.user, conf.group, conf.mode) == ("root", "root", 0o600)


def test_the_cgroup_driver_matches_the_hosts_cgroup_version_and_the_fact_the_kubelet_reads(host, config, facts):
    v2 = host.file("/sys/fs/cgroup/cgroup.controllers").exists
    assert facts["cgroup_driver"] == ("systemd" if v2 else "cgroupfs")
    options = config["plugins"][CRI]["containerd"]["runtimes"]["runc"]["options"]
    assert options["SystemdCgroup"] is (facts["cgroup_driver"] == "systemd")
    assert facts["socket"] == "unix:///run/containerd/containerd.sock"


def test_the_sandbox_image_is_imported_and_named_in_the_configuration(host, config):
    assert config["plugins"][CRI]["sandbox_image"] == SANDBOX
    listed = host.check_output("ctr --namespace k8s.io images list --quiet").split()
    assert SANDBOX in listed


def test_a_nested_container_runs_on_the_snapshotter(host):
    """containerd in a container runs containers only when its snapshots are not on overlayfs (the lab's volume)."""
    name = "slipway-verify-nested"
    host.run(f"ctr --namespace k8s.io task kill --signal SIGKILL {name}; ctr --namespace k8s.io container rm {name}")
    started = host.run(f"ctr --namespace k8s.io run --detach {SANDBOX} {name}")
    try:
        assert started.rc == 0, started.stderr
        tasks = host.check_output("ctr --namespace k8s.io task list")
        assert any(line.split()[:1] == [name] and "RUNNING" in line for line in tasks.splitlines()), tasks
    finally:
        host.run(f"ctr --namespace k8s.io task kill --signal SIGKILL {name}; sleep 1; "
                 f"ctr --namespace k8s.io task rm {name}; ctr --namespace k8s.io container rm {name}")


def test_an_image_named_after_the_stack_registry_is_pulled_through_the_mirror_with_the_credentials(host, config):
    registry = os.environ.get("SLIPWAY_REGISTRY", "127.0.0.1:5001")
    image = f"{registry}/slipway-lab/pause:verify"
    docker = dict(os.environ)
    subprocess.run(["docker", "tag", SANDBOX, image], check=True, env=docker)
    subprocess.run(["docker", "push", "--quiet", image], check=True, env=docker, capture_output=True)
    hosts = host.file(f"/etc/containerd/certs.d/{registry}/hosts.toml").content_string
    mirror = tomllib.loads(hosts)
    [endpoint] = mirror["host"]
    auth = config["plugins"][CRI]["registry"]["configs"][endpoint.split("//")[1]]["auth"]
    # ctr is not the CRI, but it reads the same hosts folder; the credentials are the ones the CRI would send.
    pulled = host.run(f"ctr --namespace slipway-verify images pull --hosts-dir /etc/containerd/certs.d "
                      f"--user '{auth['username']}:{auth['password']}' {image}")
    assert pulled.rc == 0, pulled.stderr
    refused = host.run(f"ctr --namespace slipway-verify images pull --hosts-dir /etc/containerd/certs.d {image}-none")
    assert refused.rc != 0 and "401" in refused.stderr + refused.stdout
    host.run(f"ctr --namespace slipway-verify images rm {image}")
