"""The digest of what a system's templates can see: equal for equal inputs, different when anything they name
changes, and none at all for a template that may render differently from the same inputs."""

from __future__ import annotations

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible_collections.slipway.platform.plugins.plugin_utils._inputs import InputDigests
from ansible_collections.slipway.platform.plugins.plugin_utils._render import ManifestRenderer

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ system.name }}"}
data: {token: "{{ app_token }}", image: "{{ images.app }}", greeting: "{{ values.greeting | default('hi') }}"}
"""
OWN = {"system": {"name": "app", "namespace": "shop"}, "images": {"app": "r/app:1"}, "values": {}}


def digests(task_vars=None, run=("local",)):
    renderer = ManifestRenderer(Templar(loader=DataLoader()))
    return InputDigests(renderer, dict({"app_token": "t1", "unrelated": 1}, **(task_vars or {})), list(run))


def folder(tmp_path, text=TEMPLATE, name="app", extra=None):
    path = tmp_path / name / "deploy"
    path.mkdir(parents=True, exist_ok=True)
    (path / "app.yaml.j2").write_text(text)
    for filename, content in (extra or {}).items():
        (path / filename).write_text(content)
    return str(path)


def test_equal_inputs_give_equal_digests_and_unnamed_variables_do_not_count(tmp_path):
    path = folder(tmp_path)
    first = digests().system(path, OWN)
    assert first and len(first) == 64
    assert digests({"unrelated": 2, "another": "x"}).system(path, OWN) == first


@pytest.mark.parametrize("change", ["named variable", "image", "values", "template", "plain file", "run", "system"])
def test_anything_the_templates_see_changes_the_digest(tmp_path, change):
    path = folder(tmp_path)
    before = digests().system(path, OWN)
    own, task_vars, run = dict(OWN), {}, ("local",)
    if change == "named variable":
        task_vars = {"app_token": "t2"}
    elif change == "image":
        own["images"] = {"app": "r/app:2"}
    elif change == "values":
        own["values"] = {"greeting": "hello"}
    elif change == "template":
        folder(tmp_path, TEMPLATE + "# a comment\n")
    elif change == "plain file":
        folder(tmp_path, extra={"extra.yaml": "kind: ConfigMap\n"})
    elif change == "run":
        run = ("staging",)
    else:
        own["system"] = {"name": "app", "namespace": "shop", "depends_on": ["db"]}
    assert digests(task_vars, run).system(path, own) != before


def test_a_variable_is_hashed_as_resolved_so_what_it_refers_to_counts(tmp_path):
    path = folder(tmp_path, "x: '{{ app_url }}'\n")
    url = trust_as_template("http://{{ app_host }}/")  # as Ansible reads it from an inventory
    first = digests({"app_url": url, "app_host": "a"}).system(path, OWN)
    second = digests({"app_url": url, "app_host": "b"}).system(path, OWN)
    assert first and second and first != second


@pytest.mark.parametrize("text", [
    "x: '{{ lookup(\"ansible.builtin.env\", \"HOME\") }}'\n",
    "x: '{{ query(\"ansible.builtin.env\", \"HOME\") }}'\n",
    "x: '{{ now() }}'\n",
    "x: '{{ hostvars[\"localhost\"] }}'\n",
    "x: '{{ vars[\"app_\" ~ \"token\"] }}'\n",
    "x: '{{ [1, 2] | random }}'\n",
    "x: '{{ [1, 2] | ansible.builtin.shuffle }}'\n",
    "{% include 'other.j2' %}\n",
    "#jinja2: trim_blocks: False\nx: 1\n",
    "x: '{{ unclosed'\n",
])
def test_a_template_that_may_render_differently_from_the_same_inputs_is_never_reused(tmp_path, text):
    assert digests().system(folder(tmp_path, text), OWN) is None


def test_a_variable_that_cannot_be_resolved_means_no_reuse(tmp_path):
    path = folder(tmp_path, "x: '{{ broken }}'\n")
    assert digests({"broken": trust_as_template("{{ nowhere_defined }}")}).system(path, OWN) is None
    assert digests().system(folder(tmp_path, "x: '{{ not_a_task_var }}'\n", name="b"), OWN)  # rendering will say
