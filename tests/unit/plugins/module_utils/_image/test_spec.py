"""System descriptions as the image steps read them: validated before anything runs."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import CATEGORIES, load_systems


def write_system(root, name, description, dockerfile=True):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if dockerfile:
        (folder / "Dockerfile").write_text("FROM scratch\n")
    (folder / "slipway.yml").write_text(yaml.safe_dump(description))
    return folder


def base(name="api", **extra):
    description = {"name": name, "images": [{"name": name}], "tests": {"unit": ["true"]}}
    description.update(extra)
    return description


def test_loads_defaults_and_timeouts(tmp_path):
    write_system(tmp_path, "api", base(tests={"unit": ["true"], "style": {"command": ["sh", "-c", "x"],
                                                                          "timeout": 7}}))
    (system,) = load_systems(str(tmp_path), ["api"], default_timeout=11)
    image = system.images[0]
    assert (image.name, image.dockerfile, image.target, image.build_args) == ("api", "Dockerfile", None, {})
    assert image.context == str(tmp_path / "api")
    assert [(t.category, t.command, t.timeout) for t in system.tests] == [
        ("unit", ("true",), 11), ("style", ("sh", "-c", "x"), 7)]
    assert system.compose_file is None


@pytest.mark.parametrize("description,message", [
    (base(name="other"), "names itself 'other'"),
    (base(images=[]), "images must be a non-empty list"),
    (base(images=[{"name": "Bad_Name"}]), "not a valid repository"),
    (base(images=[{"name": "api", "context": "nowhere"}]), "is not a folder"),
    (base(images=[{"name": "api", "dockerfile": "Nope"}]), "does not exist"),
    (base(images=[{"name": "api", "build_args": ["A=1"]}]), "build_args must be a mapping"),
    (base(tests={"speed": ["true"]}), "unknown test categories"),
    (base(tests={"unit": "make test"}), "non-empty list of strings"),
    (base(tests={"unit": []}), "non-empty list of strings"),
    (base(tests={"unit": {"command": ["true"], "timeout": 0}}), "positive number"),
    ("just a string", "must be a mapping"),
])
def test_invalid_descriptions_are_rejected_with_the_file_named(tmp_path, description, message):
    write_system(tmp_path, "api", description)
    with pytest.raises(SlipwayError, match=message) as caught:
        load_systems(str(tmp_path), ["api"])
    assert "slipway.yml" in caught.value.msg or "repository" in caught.value.msg


def test_selection_errors(tmp_path):
    write_system(tmp_path, "api", base())
    write_system(tmp_path, "web", base(name="web", images=[{"name": "api"}]))
    with pytest.raises(SlipwayError, match="declared by both api and web"):
        load_systems(str(tmp_path), ["api", "web"])
    with pytest.raises(SlipwayError, match="does not exist"):
        load_systems(str(tmp_path), ["ghost"])
    with pytest.raises(SlipwayError, match="DNS-1123"):
        load_systems(str(tmp_path), ["../etc"])
    with pytest.raises(SlipwayError, match="more than once"):
        load_systems(str(tmp_path), ["api", "api"])
    with pytest.raises(SlipwayError, match="no systems"):
        load_systems(str(tmp_path), [])
    with pytest.raises(SlipwayError, match="not a folder"):
        load_systems(str(tmp_path / "missing"), ["api"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "slipway.yml").write_text("name: [unclosed\n")
    with pytest.raises(SlipwayError, match="not valid YAML"):
        load_systems(str(tmp_path), ["bad"])


def test_categories_are_the_articles_six():
    assert CATEGORIES == ("unit", "functional", "style", "duplication", "outdated", "licences")
