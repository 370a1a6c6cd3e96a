"""The build report: an image's reference by digest, or a clear error."""

from __future__ import annotations

import json

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.build_report import reference_by_digest

BACKEND = "127.0.0.1:5001/backend@sha256:" + "ab" * 32
FRONTEND = "127.0.0.1:5001/frontend@sha256:" + "cd" * 32
REPORT = {"backend": BACKEND, "frontend": FRONTEND}


def test_the_reference_is_picked_by_image_name():
    assert reference_by_digest(REPORT, "frontend") == FRONTEND


def test_the_report_may_be_the_files_json_text():
    assert reference_by_digest(json.dumps(REPORT, indent=2) + "\n", "backend") == BACKEND


def test_a_missing_image_names_the_images_the_report_has():
    with pytest.raises(SlipwayError) as caught:
        reference_by_digest(REPORT, "worker")
    assert caught.value.msg.startswith("image 'worker' is not in the build report (it has: backend, frontend); "
                                       "run playbooks/build.yml")


def test_an_empty_report_says_so():
    with pytest.raises(SlipwayError, match=r"\(it has: none\)"):
        reference_by_digest({}, "backend")


@pytest.mark.parametrize("reference", ["127.0.0.1:5001/backend:latest", "127.0.0.1:5001/backend@sha256:abc",
                                       "127.0.0.1:5001/backend@sha256:" + "AB" * 32, None, 7])
def test_a_reference_not_by_digest_is_refused(reference):
    with pytest.raises(SlipwayError, match="not a reference by digest"):
        reference_by_digest({"backend": reference}, "backend")


@pytest.mark.parametrize(("report", "message"), [
    ("{not json", "not valid JSON"),
    ('["backend"]', "must map image names to references, not list"),
    (None, "must map image names to references, not NoneType"),
])
def test_a_report_that_is_not_a_mapping_is_refused(report, message):
    with pytest.raises(SlipwayError, match=message):
        reference_by_digest(report, "backend")


@pytest.mark.parametrize("image", ["", None, 3])
def test_an_image_name_is_required(image):
    with pytest.raises(SlipwayError, match="expected an image name"):
        reference_by_digest(REPORT, image)
