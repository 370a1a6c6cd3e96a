"""The local stack's library: what ``hack/stack.py`` and ``hack/realnode.py`` run, one file per job.

Standard library only: the stack must start on a machine that has nothing but Debian's python3. The one import from
outside is the collection's own identity generator (``plugins/module_utils/_security/identity.py``, itself standard
library only), which ``bootstrap`` loads through the collection link so that the stack's deployers are made by the
same code as every cluster's.
Imports point one way: a module imports only modules listed above it.

    config          where everything lives, pinned versions, ports, users
    proc            commands, daemons and their pid files, waits, step announcements, the stack lock
    kubeapi         kubectl and TLS reads of the API server as one of the stack's identities
    packages, docker, registry, gobuild, pki, control_plane, bootstrap    stages: import only the three above
    base_images, kwok, gateway_api      stages that also use a stage above (docker; gobuild; gobuild)
    realnode/       the real node: layout, dns, probes, containerd, kubelet (+ control_plane, pki, gobuild),
                    up (+ registry), down
    gateway         the gateway: Traefik built (gobuild), imaged (docker), run on the real node (realnode)

The launchers ``hack/stack.py`` and ``hack/realnode.py`` import this package; nothing here imports a launcher.
"""
