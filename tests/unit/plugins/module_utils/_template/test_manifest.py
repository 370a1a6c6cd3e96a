"""The service template writer: plan (pure) and apply (on a temporary folder)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._template import manifest

FILES = (
    {"path": "Dockerfile", "content": "FROM slipway/busybox:stable\n"},
    {"path": "bin/dev", "content": "#!/bin/sh\nexec docker compose up\n", "mode": "0755"},
)


def desired(files=FILES):
    return manifest.normalise_files(files)


def plan(existing, manifest_text, files=FILES, force=False):
    return manifest.plan(desired(files), existing, manifest_text, template="backend", force=force)


def recorded(files=FILES):
    """The manifest a previous run of the generator would have written."""
    return manifest.render_manifest("backend", {}, desired(files))


def on_disk(files=FILES):
    return {path: (content, mode) for path, (content, mode) in desired(files).items()}


class TestNormalise:
    def test_mode_is_octal_with_a_default(self):
        assert desired() == {"Dockerfile": ("FROM slipway/busybox:stable\n", 0o644),
                             "bin/dev": ("#!/bin/sh\nexec docker compose up\n", 0o755)}

    @pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../b", "a//b", "./a", "", manifest.MANIFEST_NAME])
    def test_paths_that_could_escape_or_clash_are_refused(self, path):
        with pytest.raises(SlipwayError):
            manifest.normalise_files([{"path": path, "content": ""}])

    def test_duplicate_paths_are_refused(self):
        with pytest.raises(SlipwayError, match="twice"):
            manifest.normalise_files([{"path": "a", "content": ""}, {"path": "a", "content": ""}])

    def test_bad_mode_is_refused(self):
        with pytest.raises(SlipwayError, match="not octal"):
            manifest.normalise_files([{"path": "a", "content": "", "mode": "rwx"}])


class TestPlan:
    def test_fresh_folder_creates_everything(self):
        result = plan({}, None)
        assert result["created"] == ["Dockerfile", "bin/dev"]
        assert result["changed"] and not result["conflicts"] and result["manifest"]

    def test_second_run_changes_nothing(self):
        result = plan(on_disk(), recorded())
        assert result["unchanged"] == ["Dockerfile", "bin/dev"]
        assert not result["changed"] and result["manifest"] is None

    def test_untouched_file_follows_the_template(self):
        new = [{"path": "Dockerfile", "content": "FROM slipway/debian:bookworm\n"}, FILES[1]]
        result = plan(on_disk(), recorded(), files=new)
        assert result["updated"] == ["Dockerfile"] and not result["conflicts"] and result["changed"]
        assert result["manifest"] is not None

    def test_edited_file_is_a_conflict_and_refuses_the_run(self):
        edited = dict(on_disk(), Dockerfile=("FROM mine\n", 0o644))
        result = plan(edited, recorded())
        assert result["conflicts"] == {"Dockerfile": manifest.EDITED}
        assert result["refused"] and not result["changed"]

    def test_edited_file_is_overwritten_with_force(self):
        edited = dict(on_disk(), Dockerfile=("FROM mine\n", 0o644))
        result = plan(edited, recorded(), force=True)
        assert result["updated"] == ["Dockerfile"] and result["changed"] and not result["refused"]
        assert result["conflicts"] == {"Dockerfile": manifest.EDITED}

    def test_edited_file_equal_to_desired_is_simply_unchanged(self):
        # The user made the same edit the new template makes: nothing to overwrite, nothing lost.
        new = [{"path": "Dockerfile", "content": "FROM mine\n"}, FILES[1]]
        edited = dict(on_disk(), Dockerfile=("FROM mine\n", 0o644))
        result = plan(edited, recorded(), files=new)
        assert result["unchanged"] == ["Dockerfile", "bin/dev"] and not result["conflicts"]
        assert result["manifest"] is not None  # the record follows the new content

    def test_removed_file_is_a_conflict(self):
        result = plan({"bin/dev": on_disk()["bin/dev"]}, recorded())
        assert result["conflicts"] == {"Dockerfile": manifest.REMOVED} and result["refused"]
        assert plan({"bin/dev": on_disk()["bin/dev"]}, recorded(), force=True)["created"] == ["Dockerfile"]

    def test_file_that_predates_the_generator_is_a_conflict(self):
        result = plan({"Dockerfile": ("FROM theirs\n", 0o644)}, None)
        assert result["conflicts"] == {"Dockerfile": manifest.UNMANAGED}
        assert result["created"] == ["bin/dev"] and result["refused"]

    def test_identical_file_without_manifest_is_adopted(self):
        result = plan(on_disk(), None)
        assert result["unchanged"] == ["Dockerfile", "bin/dev"] and result["manifest"] and result["changed"]

    def test_non_text_path_is_a_conflict(self):
        result = plan(dict(on_disk(), Dockerfile=(None, 0o755)), recorded())
        assert result["conflicts"] == {"Dockerfile": manifest.EDITED}

    def test_mode_only_difference_is_fixed(self):
        result = plan(dict(on_disk(), **{"bin/dev": (FILES[1]["content"], 0o644)}), recorded())
        assert result["modes"] == ["bin/dev"] and result["changed"] and not result["conflicts"]

    def test_unreadable_manifest_is_an_error_that_says_what_to_do(self):
        with pytest.raises(SlipwayError, match="force"):
            plan({}, "{not json")

    def test_conflict_message_names_every_file_and_the_way_out(self):
        text = manifest.conflict_message({"a": manifest.EDITED, "b": manifest.REMOVED}, "svc")
        assert "a: edited" in text and "b: removed" in text and "force" in text


class TestApply:
    def run(self, dest, files=FILES, force=False, check=False):
        want = desired(files)
        existing, text = manifest.read_tree(str(dest), want)
        result = manifest.plan(want, existing, text, template="backend", force=force)
        if not check:
            manifest.apply(str(dest), want, result)
        return result

    def test_writes_files_modes_and_manifest_then_is_idempotent(self, tmp_path):
        first = self.run(tmp_path)
        assert first["changed"]
        assert (tmp_path / "Dockerfile").read_text() == FILES[0]["content"]
        assert stat.S_IMODE(os.stat(tmp_path / "bin" / "dev").st_mode) == 0o755
        record = json.loads((tmp_path / manifest.MANIFEST_NAME).read_text())
        assert record["files"]["Dockerfile"] == manifest.sha256(FILES[0]["content"])
        before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
        second = self.run(tmp_path)
        assert not second["changed"]
        assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before

    def test_check_mode_plan_matches_the_real_run_and_writes_nothing(self, tmp_path):
        checked = self.run(tmp_path, check=True)
        assert list(tmp_path.iterdir()) == []
        applied = self.run(tmp_path)
        assert {k: checked[k] for k in ("created", "updated", "changed")} == \
               {k: applied[k] for k in ("created", "updated", "changed")}

    def test_local_edit_is_kept_and_the_run_refused(self, tmp_path):
        self.run(tmp_path)
        (tmp_path / "Dockerfile").write_text("FROM mine\n")
        with pytest.raises(SlipwayError, match="Dockerfile: edited") as error:
            self.run(tmp_path)
        assert error.value.details["conflicts"] == {"Dockerfile": "edited"}
        assert (tmp_path / "Dockerfile").read_text() == "FROM mine\n"

    def test_force_overwrites_the_local_edit(self, tmp_path):
        self.run(tmp_path)
        (tmp_path / "Dockerfile").write_text("FROM mine\n")
        self.run(tmp_path, force=True)
        assert (tmp_path / "Dockerfile").read_text() == FILES[0]["content"]
        assert not self.run(tmp_path)["changed"]

    def test_other_files_in_the_folder_are_never_touched(self, tmp_path):
        (tmp_path / "notes.txt").write_text("mine\n")
        self.run(tmp_path)
        assert (tmp_path / "notes.txt").read_text() == "mine\n"

    def test_diff_shows_only_written_files(self, tmp_path):
        self.run(tmp_path)
        new = [{"path": "Dockerfile", "content": "FROM slipway/debian:bookworm\n"}, FILES[1]]
        existing = manifest.read_tree(str(tmp_path), desired(new))[0]
        result = self.run(tmp_path, files=new, check=True)
        entries = manifest.diffs(desired(new), existing, result, str(tmp_path))
        assert len(entries) == 1
        assert entries[0]["before"] == FILES[0]["content"] and entries[0]["after"] == new[0]["content"]

    def test_a_folder_in_the_way_is_reported(self, tmp_path):
        (tmp_path / "Dockerfile").mkdir()
        with pytest.raises(SlipwayError, match="not a regular file"):
            self.run(tmp_path, force=True)
