"""The local stack's library: what ``hack/stack.py`` and ``hack/realnode.py`` run, one file per job.

Standard library only: the stack must start on a machine that has nothing but Debian's python3.
Imports point one way, lowest first (a module imports only modules above it in this list):

    config         where everything lives, pinned versions, ports, users
    proc           commands, daemons and their pid files, waits, step announcements, the stack lock
    kubeapi        kubectl and TLS reads of the API server as a stack identity
    packages, docker, registry, gobuild, pki                         stages that need only the above
    base_images (docker), control_plane (pki), kwok (gobuild), bootstrap, gateway_api (gobuild)
    realnode/      the real node: kubelet + containerd (layout, probes, dns, up, down)

The launchers ``hack/stack.py`` and ``hack/realnode.py`` import this package; nothing here imports a launcher.
"""
