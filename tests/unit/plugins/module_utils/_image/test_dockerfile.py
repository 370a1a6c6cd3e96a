"""base_images: the images a Dockerfile's build reads, as the builder reads the FROM and --from lines."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.dockerfile import BaseImage, base_images


def references(text, build_args=None, target=None):
    return [base.reference for base in base_images(text, build_args, target)]


def test_one_base_with_its_line():
    assert base_images("# syntax\n\nFROM slipway/busybox:stable\nCOPY . /\n") == [
        BaseImage("slipway/busybox:stable", None, 3)]


@pytest.mark.parametrize("text", ["FROM scratch\n", "from SCRATCH as empty\nCOPY a /a\n"])
def test_scratch_is_no_image(text):
    assert references(text) == []


def test_a_stage_name_is_not_an_image_and_names_are_case_insensitive():
    text = ("FROM slipway/python:bookworm AS Builder\nRUN make\n"
            "FROM builder AS tested\nRUN make test\n"
            "from slipway/busybox:stable\nCOPY --from=BUILDER /out /out\nCOPY --from=tested /report /report\n")
    assert references(text) == ["slipway/python:bookworm", "slipway/busybox:stable"]


def test_a_name_refers_only_to_an_earlier_stage():
    assert references("FROM builder\nRUN true\nFROM slipway/busybox:stable AS builder\n") == [
        "builder", "slipway/busybox:stable"]


def test_copy_from_an_image_and_from_a_stage_index_and_run_mount_from():
    text = ("FROM slipway/debian:bookworm AS base\n"
            "FROM slipway/busybox:stable\n"
            "COPY --from=0 /etc/os-release /\n"
            "COPY --chown=1:1 --from=127.0.0.1:5001/tools:1 /bin/tool /bin/\n"
            "RUN --mount=type=bind,from=slipway/redis:7,target=/r --mount=type=cache,target=/c true\n"
            "RUN --mount=type=bind,from=base,target=/b true\n")
    assert references(text) == ["slipway/debian:bookworm", "slipway/busybox:stable", "127.0.0.1:5001/tools:1",
                                "slipway/redis:7"]


def test_args_before_from_with_build_args_winning_over_defaults():
    text = 'ARG BASE=slipway/busybox\nARG TAG="stable"\nARG NONE\nFROM ${BASE}:$TAG$NONE\n'
    assert references(text) == ["slipway/busybox:stable"]
    assert references(text, {"TAG": "edge"}) == ["slipway/busybox:edge"]
    assert references(text, {"BASE": "127.0.0.1:5001/base", "NONE": "-1"}) == ["127.0.0.1:5001/base:stable-1"]


def test_an_arg_refers_to_an_earlier_one_and_build_args_only_count_when_declared():
    text = "ARG REPO=slipway\nARG IMAGE=$REPO/busybox\nFROM $IMAGE:${UNDECLARED:-stable}\n"
    assert references(text, {"UNDECLARED": "edge"}) == ["slipway/busybox:stable"]
    assert references(text, {"REPO": "mine"}) == ["mine/busybox:stable"]


@pytest.mark.parametrize("word, value", [
    ("${TAG:-stable}", "stable"), ("${TAG-stable}", ""), ("${MISSING-stable}", "stable"),
    ("${TAG:+x}", ""), ("${TAG+x}", "x"), ("${SET:+x}", "x"), ("'$SET'", "$SET"), ('"$SET"', "7"),
])
def test_substitution_forms(word, value):
    text = f"ARG TAG=\nARG SET=7\nFROM slipway/busybox:v{word}\n"
    assert references(text) == [f"slipway/busybox:v{value}"]


def test_args_inside_a_stage_do_not_reach_a_later_from():
    with pytest.raises(SlipwayError, match="line 3: FROM \\$BASE names no image"):
        base_images("FROM slipway/busybox:stable\nARG BASE=slipway/debian:bookworm\nFROM $BASE\n")


def test_platform_flag():
    text = ("ARG ARCH=arm64\nFROM --platform=linux/$ARCH slipway/busybox:stable\n"
            "FROM --platform=$BUILDPLATFORM slipway/debian:bookworm\n")
    assert [(b.reference, b.platform) for b in base_images(text)] == [
        ("slipway/busybox:stable", None), ("slipway/debian:bookworm", None)]
    assert base_images("FROM --platform=linux/arm64 slipway/busybox:stable\n")[0].platform == "linux/arm64"


def test_target_keeps_the_stages_up_to_it():
    text = "FROM slipway/debian:bookworm AS one\nFROM slipway/python:bookworm AS two\nFROM slipway/busybox:stable\n"
    assert references(text, target="TWO") == ["slipway/debian:bookworm", "slipway/python:bookworm"]
    assert references(text) == ["slipway/debian:bookworm", "slipway/python:bookworm", "slipway/busybox:stable"]
    with pytest.raises(SlipwayError, match="target 'three' is not a stage"):
        base_images(text, target="three")


def test_continuations_comments_and_the_escape_directive():
    text = "FROM \\\n# a comment inside\n   slipway/busybox:stable \\\n  AS base\nFROM base\n"
    assert references(text) == ["slipway/busybox:stable"]
    text = "# escape=`\nFROM `\n  C:\\images\\base:1\n"
    assert references(text) == ["C:\\images\\base:1"]


def test_heredoc_bodies_are_not_instructions():
    text = ("FROM slipway/busybox:stable\nRUN <<EOF\nFROM not-an-image\nEOF\n"
            "COPY <<-'END' /etc/x\n\tFROM nor-this\n\tEND\nFROM slipway/debian:bookworm\n")
    assert references(text) == ["slipway/busybox:stable", "slipway/debian:bookworm"]


def test_each_base_once_in_order():
    text = "FROM slipway/busybox:stable AS a\nFROM slipway/debian:bookworm\nFROM slipway/busybox:stable\n"
    assert references(text) == ["slipway/busybox:stable", "slipway/debian:bookworm"]


@pytest.mark.parametrize("text, message", [
    ("RUN true\n", "has no FROM"),
    ("FROM a b\n", "FROM takes an image"),
    ("FROM a AS\n", "FROM takes an image"),
    ("FROM ${BROKEN\n", "unterminated"),
    ("ARG V=x\nFROM ${V/x/y}\n", "substitution Slipway does not read"),
    ("# escape=!\nFROM a\n", "escape directive"),
])
def test_what_cannot_be_read_is_said(text, message):
    with pytest.raises(SlipwayError, match=message):
        base_images(text)
