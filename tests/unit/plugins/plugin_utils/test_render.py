"""Rendering manifests for a delivery: Ansible's semantics (filters, undefined variables, conditional objects), one
template engine for the run and each template text compiled once however many systems use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible_collections.slipway.platform.plugins.plugin_utils._render import ManifestRenderer, RenderError

COLLECTIONS = Path(__file__).resolve().parents[4] / ".stack" / "collections"

SERVICE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ system.name }}"}
data:
  replicas: "{{ values.replicas | default(1) }}"
  image: "{{ images[system.name] }}"
  encoded: "{{ system.name | ansible.builtin.b64encode }}"
"""


def system(tmp_path, name, files):
    folder = tmp_path / name / "deploy"
    folder.mkdir(parents=True)
    for filename, text in files.items():
        (folder / filename).write_text(text)
    return str(folder)


def variables(name, **values):
    return {"system": {"name": name}, "images": {name: f"r:5001/{name}:v1"}, "values": values, "context": "unit"}


def render(renderer, tmp_path, name, files, **values):
    return renderer.render_folder(name, system(tmp_path, name, files), str(tmp_path), variables(name, **values))


def test_many_systems_from_one_template_compile_it_once_and_render_their_own_values(tmp_path):
    renderer = ManifestRenderer(Templar(loader=DataLoader()))
    seen = [render(renderer, tmp_path, f"svc{i}", {"app.yaml.j2": SERVICE}, replicas=i) for i in range(5)]
    assert renderer.compilations == 1
    data = [documents[0]["content"]["data"] for documents in seen]
    assert [d["replicas"] for d in data] == ["0", "1", "2", "3", "4"]
    assert data[3] == {"replicas": "3", "image": "r:5001/svc3:v1", "encoded": "c3ZjMw=="}
    assert seen[3][0]["file"] == "svc3/deploy/app.yaml.j2" and seen[3][0]["index"] == 0


def test_a_changed_template_text_is_compiled_again(tmp_path):
    renderer = ManifestRenderer(Templar(loader=DataLoader()))
    first = render(renderer, tmp_path, "a", {"app.yaml.j2": "x: '{{ system.name }}'\n"})
    second = render(renderer, tmp_path, "b", {"app.yaml.j2": "y: '{{ system.name }}'\n"})
    assert renderer.compilations == 2
    assert first[0]["content"] == {"x": "a"} and second[0]["content"] == {"y": "b"}


def test_includes_come_from_each_systems_own_folder(tmp_path):
    renderer = ManifestRenderer(Templar(loader=DataLoader()))
    main = {"app.yaml.j2": "{% include 'part.j2' %}\n"}
    first = render(renderer, tmp_path, "a", dict(main, **{"part.j2": "from: a\n"}))
    second = render(renderer, tmp_path, "b", dict(main, **{"part.j2": "from: b\n"}))
    assert first[0]["content"] == {"from": "a"} and second[0]["content"] == {"from": "b"}


def test_an_undefined_variable_names_the_system_and_the_file(tmp_path):
    renderer = ManifestRenderer(Templar(loader=DataLoader()))
    render(renderer, tmp_path, "good", {"app.yaml.j2": "x: '{{ missing | default(1) }}'\n"})
    with pytest.raises(RenderError, match=r"system bad: cannot render bad/deploy/app.yaml.j2: 'missing' is undefined"):
        render(renderer, tmp_path, "bad", {"app.yaml.j2": "x: '{{ missing }}'\n"})


def test_a_template_that_renders_nothing_is_no_document_and_plain_yaml_is_kept(tmp_path):
    renderer = ManifestRenderer(Templar(loader=DataLoader()))
    documents = render(renderer, tmp_path, "app", {
        "a.yaml.j2": "{% if values.enabled | default(false) %}kind: Secret\n{% endif %}",
        "b.yaml": "kind: ConfigMap\n---\nkind: Service\n"})
    assert [(d["file"], d["index"], d["content"]) for d in documents] == [
        ("app/deploy/b.yaml", 0, {"kind": "ConfigMap"}), ("app/deploy/b.yaml", 1, {"kind": "Service"})]


def test_invalid_yaml_and_an_empty_folder_are_reported_with_the_system(tmp_path):
    renderer = ManifestRenderer(Templar(loader=DataLoader()))
    with pytest.raises(RenderError, match="system app: app/deploy/a.yaml.j2 does not render to valid YAML"):
        render(renderer, tmp_path, "app", {"a.yaml.j2": "x: [{{ system.name }}\n"})
    with pytest.raises(RenderError, match="system empty: no \\*.yaml.j2 / \\*.yml.j2 templates in"):
        render(renderer, tmp_path, "empty", {"README.md": "-"})


COLLECTION_FILTER = """
import sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[1]])  # before the collection is imported, as ansible-playbook does
from ansible.template import Templar
from ansible_collections.slipway.platform.plugins.plugin_utils._render import ManifestRenderer
renderer = ManifestRenderer(Templar())
renderer.use([sys.argv[2]], {"name": "My_Shop"})
print(renderer.render_text("{{ name | slipway.platform.dns_label }}"))
"""


def test_templates_use_the_collections_own_filters(tmp_path):
    # a process of its own: the collection loader must be installed before the collection is first imported
    done = subprocess.run([sys.executable, "-c", COLLECTION_FILTER, str(COLLECTIONS), str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "my-shop-0da13f5b"  # a label, with a digest of the name it changed
