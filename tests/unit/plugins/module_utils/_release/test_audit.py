# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A release's audit trail: the delivering user's requests in the release's window, identified, never a body."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.audit import (
    audit_events,
    epoch,
    matching_events,
    release_window,
)

RECORD = {"revision": 4, "started_at": "2026-01-01T10:00:00Z", "finished_at": "2026-01-01T10:00:20Z",
          "actor": {"user": "ci", "kubernetes": {"username": "slipway:deployer", "groups": ["slipway:deployers"]}}}
SENTINEL = "SENTINEL-7f3a-value"


def event(at, user="slipway:deployer", verb="patch", stage="ResponseComplete", **ref):
    ref = ref or {"apiGroup": "apps", "resource": "deployments", "namespace": "shop", "name": "backend"}
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"id-{at}-{user}",
            "stage": stage, "requestURI": "/apis/apps/v1/namespaces/shop/deployments/backend", "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]}, "objectRef": ref,
            "responseStatus": {"code": 200}, "requestObject": {"data": {"password": SENTINEL}},
            "responseObject": {"data": {"password": SENTINEL}}, "requestReceivedTimestamp": at,
            "stageTimestamp": at}


def lines(*events):
    return [json.dumps(e) for e in events]


def window():
    return release_window(RECORD)[1:]


def test_the_window_runs_from_the_start_to_just_after_the_journal_writes():
    user, since, until = release_window(RECORD)
    assert user == "slipway:deployer"
    assert since == epoch("2026-01-01T10:00:00Z")
    assert epoch("2026-01-01T10:00:21Z") < until <= epoch("2026-01-01T10:00:30Z")


def test_a_release_that_does_not_say_who_delivered_it_is_refused_clearly():
    with pytest.raises(SlipwayError, match="release 4 does not record the Kubernetes identity"):
        release_window(dict(RECORD, actor={"user": "ci"}))


def test_only_the_delivering_users_completed_requests_in_the_window_are_kept():
    rows = matching_events(lines(
        event("2026-01-01T09:59:59.900000Z"),  # before the release started
        event("2026-01-01T10:00:01.000000Z"),
        event("2026-01-01T10:00:01.000000Z", stage="ResponseStarted"),  # the same request, half-way
        event("2026-01-01T10:00:02.000000Z", user="alice"),  # someone else, in the window
        event("2026-01-01T10:00:03.000000Z", user="slipway:deployer-2"),  # a name that only starts alike
        event("2026-01-01T10:00:21.500000Z", verb="create", apiGroup="", resource="configmaps",
              namespace="slipway-system", name="slipway-release-t-4"),  # the journal write, after finished_at
        event("2026-01-01T10:05:00.000000Z"),  # a later run
    ), "slipway:deployer", *window())
    assert [(r["timestamp"], r["verb"], r["resource"]) for r in rows] == [
        ("2026-01-01T10:00:01.000000Z", "patch", "deployments"),
        ("2026-01-01T10:00:21.500000Z", "create", "configmaps")]
    assert rows[0] == {"timestamp": "2026-01-01T10:00:01.000000Z", "verb": "patch", "api_group": "apps",
                       "resource": "deployments", "namespace": "shop", "name": "backend", "code": 200, "uri": None,
                       "audit_id": "id-2026-01-01T10:00:01.000000Z-slipway:deployer"}


def test_no_body_is_ever_returned():
    rows = matching_events(lines(event("2026-01-01T10:00:01Z", apiGroup="", resource="secrets", namespace="shop",
                                       name="db")), "slipway:deployer", *window())
    assert rows and SENTINEL not in json.dumps(rows)


def test_subresources_and_requests_without_a_resource_are_named():
    rows = matching_events(lines(
        event("2026-01-01T10:00:01Z", verb="get", apiGroup="", resource="services", subresource="proxy",
              namespace="shop", name="backend:8080"),
        dict(event("2026-01-01T10:00:02Z", verb="get"), objectRef=None, requestURI="/apis"),
    ), "slipway:deployer", *window())
    assert rows[0]["resource"] == "services/proxy"
    assert (rows[1]["resource"], rows[1]["uri"]) == (None, "/apis")


def test_cut_and_foreign_lines_are_skipped():
    cut = json.dumps(event("2026-01-01T10:00:01Z"))[:-20]
    rows = matching_events([cut, "not json slipway:deployer", *lines(event("2026-01-01T10:00:02Z"))],
                           "slipway:deployer", *window())
    assert len(rows) == 1


def test_the_log_and_its_rotated_backups_are_read_in_order(tmp_path):
    log = tmp_path / "audit.log"
    backup = tmp_path / "audit-2026-01-01T10-00-10.000.log"
    old = tmp_path / "audit-2025-12-31T08-00-00.000.log"
    backup.write_text("\n".join(lines(event("2026-01-01T10:00:05Z"))) + "\n")
    old.write_text("\n".join(lines(event("2026-01-01T10:00:04Z"))) + "\n")  # stale mtime: not even opened
    log.write_text("\n".join(lines(event("2026-01-01T10:00:12Z"), event("2026-01-01T10:00:11Z", user="bob"))) + "\n")
    os.utime(old, (epoch("2025-12-31T08:00:00Z"),) * 2)
    found = audit_events(str(log), RECORD)
    assert [r["timestamp"] for r in found["events"]] == ["2026-01-01T10:00:05Z", "2026-01-01T10:00:12Z"]
    assert found["files"] == [str(backup), str(log)]
    assert (found["user"], found["since"]) == ("slipway:deployer", "2026-01-01T10:00:00Z")


def test_a_missing_log_says_where_to_run(tmp_path):
    with pytest.raises(SlipwayError, match="delegate it to the API server's host"):
        audit_events(str(tmp_path / "nope.log"), RECORD)
