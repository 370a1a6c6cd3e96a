"""One real node for the local stack: a kubelet on its own containerd, so delivered pods really run.

``hack/stack.py up --real-node`` runs :func:`up.up`, ``status`` shows :func:`probes.components`, ``down`` runs
:func:`down.down`; ``hack/realnode.py`` runs them for the node alone. The layout, the network and the reasons
behind each choice are in docs/real-node.md.

Everything the node owns lives in ``.stack/realnode/`` (containerd root and state, kubelet root,
pod logs, CNI config and IP allocations) plus three host objects that ``down`` removes again:
the bridge ``slipway0`` (pod subnet 10.77.0.0/24, no default route out of the pods, no NAT), one
``FORWARD`` rule that lets pods on that bridge talk to each other, and the cgroup ``/slipway-realnode``.

    layout      names, paths, addresses and ports of the node
    dns         the node's cluster DNS: ``hack/realnode.py dns`` serves it, ``ensure_dns`` starts it
    probes      whether containerd, the kubelet, the node and its DNS answer (``status``)
    containerd  containerd (CRI) on its own socket, and the pause image it runs sandboxes with
    kubelet     the kubelet: binary, credentials, configuration, process
    up          host packages, pod network, pull secrets, and the order of the steps
    down        everything the node started or changed, stopped and removed again

Each module imports only those listed above it (and the stack's modules outside this package).
"""
