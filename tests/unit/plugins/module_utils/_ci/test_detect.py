"""CI detection: each server by a variable only it sets, with its job URL and build number; nothing outside CI."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._ci.detect import detect
from ansible_collections.slipway.platform.plugins.module_utils._release.deliver_task import resolved_on_failure

SERVERS = [
    ({"JENKINS_URL": "https://ci.example/", "BUILD_URL": "https://ci.example/job/shop/42/", "BUILD_NUMBER": "42",
      "JOB_NAME": "shop"}, ("jenkins", "https://ci.example/job/shop/42/", "42", "shop")),
    ({"TEAMCITY_VERSION": "2025.03", "BUILD_NUMBER": "118", "TEAMCITY_BUILDCONF_NAME": "Deliver"},
     ("teamcity", None, "118", "Deliver")),
    ({"TEAMCITY_VERSION": "2025.03", "BUILD_NUMBER": "118",
      "SLIPWAY_CI_JOB_URL": "https://tc.example/viewLog.html?buildId=9"},
     ("teamcity", "https://tc.example/viewLog.html?buildId=9", "118", None)),
    ({"GITLAB_CI": "true", "CI": "true", "CI_JOB_URL": "https://gl.example/shop/-/jobs/7", "CI_PIPELINE_IID": "31",
      "CI_JOB_NAME": "deliver"}, ("gitlab", "https://gl.example/shop/-/jobs/7", "31", "deliver")),
    ({"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_SERVER_URL": "https://github.com",
      "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "555", "GITHUB_RUN_NUMBER": "12", "GITHUB_JOB": "deliver"},
     ("github", "https://github.com/acme/shop/actions/runs/555", "12", "deliver")),
    ({"CI": "1", "BUILD_NUMBER": "3"}, ("other", None, "3", None)),
]


@pytest.mark.parametrize(("env", "expected"), SERVERS)
def test_each_server_is_recognised_with_its_job(env, expected):
    job = detect(env)
    assert (job.server, job.url, job.build_number, job.job) == expected
    assert resolved_on_failure("auto", env) == "rollback"


@pytest.mark.parametrize("env", [{}, {"CI": "false"}, {"CI": ""}, {"TEAMCITY_VERSION": ""}, {"BUILD_NUMBER": "4"}])
def test_outside_ci_nothing_is_detected_and_auto_fails_without_rollback(env):
    assert detect(env) is None
    assert resolved_on_failure("auto", env) == "fail"


def test_an_explicit_choice_beats_the_environment():
    assert resolved_on_failure("fail", {"JENKINS_URL": "https://ci.example/"}) == "fail"
    assert resolved_on_failure("rollback", {}) == "rollback"


def test_the_label_names_the_job_by_url_else_by_server_and_number():
    assert detect({"JENKINS_URL": "x", "BUILD_URL": "https://ci/job/1/"}).label() == "https://ci/job/1/"
    assert detect({"TEAMCITY_VERSION": "1", "BUILD_NUMBER": "9", "TEAMCITY_BUILDCONF_NAME": "Deliver"}).label() \
        == "teamcity Deliver #9"
