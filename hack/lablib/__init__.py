"""The provisioning lab: "bare" Debian machines (systemd as PID 1, sshd) on a Docker network of their own.

Standard library only, like hack/stacklib, whose helpers (proc, docker, base_images) it reuses.
Imports point one way: a module imports only modules listed above it (and stacklib).

    config      names, addresses, ports and the lab's state folder
    image       the machine image: a debootstrap tree, docker-imported once, tagged by its recipe's content
    machines    the network, the machines and their volumes, the SSH key, and waiting for systemd and sshd
    artifacts   the binaries Debian lacks, served over HTTP on the lab gateway with a URL + sha256 manifest
    forward     a TCP forwarder that lets the machines reach the stack's registry (127.0.0.1 only)
    sso         the stack's dex for the lab's API servers: a gateway forwarder and a relay in every machine
    inventory   the Ansible inventory of the running machines, with the manifest, registry and SSO as group vars

The launcher ``hack/lab.py`` imports this package; nothing here imports the launcher.
"""
