"""What node_prep left on the lab machine, checked from the machine itself (testinfra)."""

from __future__ import annotations

SYSCTL_FILE = "/etc/sysctl.d/90-slipway.conf"


def test_the_kernel_parameters_are_in_their_own_file_and_in_force(host):
    conf = host.file(SYSCTL_FILE)
    assert conf.is_file and conf.user == "root" and conf.mode == 0o644
    lines = {line.split("=")[0].strip(): line.split("=")[1].strip() for line in conf.content_string.splitlines()
             if "=" in line and not line.startswith("#")}
    assert lines["net.ipv4.ip_forward"] == "1"
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"
    if host.file("/proc/sys/net/bridge/bridge-nf-call-iptables").exists:
        assert lines["net.bridge.bridge-nf-call-iptables"] == "1"
        assert host.file("/proc/sys/net/bridge/bridge-nf-call-iptables").content_string.strip() == "1"


def test_modules_load_at_boot_only_where_this_kernel_can_load_them(host):
    kernel = host.check_output("uname -r")
    loadable = host.file(f"/lib/modules/{kernel}/modules.dep").exists
    for module in ("overlay", "br_netfilter"):
        assert host.file(f"/etc/modules-load.d/{module}.conf").exists == loadable, module


def test_the_hostname_is_the_inventory_name(host):
    assert host.check_output("hostname") == host.backend.get_hostname()


def test_no_swap_line_is_left_active_in_fstab(host):
    fstab = host.file("/etc/fstab")
    if fstab.exists:
        active = [line for line in fstab.content_string.splitlines()
                  if line.split()[2:3] == ["swap"] and not line.lstrip().startswith("#")]
        assert active == []


def test_the_machine_still_boots_clean(host):
    assert host.check_output("systemctl is-system-running") == "running"
    assert host.service("ssh").is_running
