# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who the API server takes a client for: its user name and groups, from a SelfSubjectReview.

That is the name the API server's audit log gives the client's requests, so a release recorded with it can be
matched to them. The review writes nothing and any authenticated identity may ask it.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import Forbidden, NotFound

SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def whoami(client):
    """``{"username", "groups"}`` as the API server authenticates ``client``; ``None`` when it cannot say (a server
    older than Kubernetes 1.28 has no SelfSubjectReview). Never the ``extra`` fields: they may hold token ids."""
    try:
        review = client.request("POST", SELF_SUBJECT_REVIEWS,
                                body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    except (NotFound, Forbidden):
        return None
    info = ((review or {}).get("status") or {}).get("userInfo") or {}
    if not info.get("username"):
        return None
    return {"username": info["username"], "groups": sorted(info.get("groups") or [])}
