"""The deliver module and its action plugin's pure helpers: argument handling, masking, clean failures."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleActionFail
from ansible.module_utils.testing import patch_module_args
from ansible_collections.slipway.platform.plugins.action import deliver as action
from ansible_collections.slipway.platform.plugins.modules import deliver, release_info


def run_main(capsys, main, args):
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    out = capsys.readouterr().out
    return json.loads(out), out


def rendered(secret_value="SENTINEL-unit-1234"):  # noqa: S107
    return [{"name": "app", "namespace": "shop", "depends_on": [], "images": {}, "documents": [
        {"file": "deploy/a.yaml.j2", "index": 0, "content": {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": secret_value}}}]}]


def test_secret_values_are_given_to_ansible_for_masking():
    values = deliver.masked_values(rendered())
    assert "SENTINEL-unit-1234" in values
    assert "abc" not in deliver.masked_values(rendered("abc"))  # too short to mask safely


def test_an_unreachable_api_fails_cleanly_without_traceback(capsys):
    result, out = run_main(capsys, deliver.main, {"context": "unit", "systems": ["app"], "rendered": rendered(),
                                                  "api_url": "https://127.0.0.1:1", "validate_certs": False,
                                                  "request_timeout": 2})
    assert result["failed"] and "cannot reach the Kubernetes API at https://127.0.0.1:1" in result["msg"]
    assert "Traceback" not in out and "SENTINEL" not in out


def test_invalid_documents_fail_before_connecting(capsys):
    bad = rendered()
    bad[0]["documents"].append({"file": "deploy/b.yaml.j2", "index": 0, "content": {"kind": "ConfigMap"}})
    result, out = run_main(capsys, deliver.main, {"context": "unit", "systems": ["app"], "rendered": bad,
                                                  "api_url": "https://127.0.0.1:1"})
    assert "system app, deploy/b.yaml.j2 (document 1): missing or empty 'apiVersion'" in result["msg"]


def test_production_needs_confirmation(capsys):
    result, out = run_main(capsys, deliver.main, {"context": "production", "systems": ["app"],
                                                  "rendered": rendered(), "api_url": "https://127.0.0.1:1"})
    assert "refusing to deliver to production without confirmation" in result["msg"]


def test_rendered_must_match_systems(capsys):
    result, out = run_main(capsys, deliver.main, {"context": "unit", "systems": ["other"], "rendered": rendered(),
                                                  "api_url": "https://127.0.0.1:1"})
    assert "do not match systems ['other']" in result["msg"]


def test_release_info_fails_cleanly(capsys):
    result, out = run_main(capsys, release_info.main, {"context": "unit", "api_url": "https://127.0.0.1:1"})
    assert result["failed"] and "cannot reach" in result["msg"] and "Traceback" not in out


def test_image_reference_prefers_the_build_report_then_tags():
    images = {"backend": "127.0.0.1:5001/backend@sha256:aa"}
    assert action.image_reference("backend", images, "r:5001", "v2") == "127.0.0.1:5001/backend@sha256:aa"
    assert action.image_reference("worker", images, "r:5001", "v2") == "r:5001/worker:v2"
    assert action.image_reference("worker", {}, "r:5001", "sha256:bb") == "r:5001/worker@sha256:bb"
    assert action.image_reference("worker", {}, "r:5001", None) == "r:5001/worker:latest"
    with pytest.raises(AnsibleActionFail, match="no registry is set"):
        action.image_reference("worker", {}, None, None)


def test_system_descriptions_are_checked(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "slipway.yml").write_text("name: other\nnamespace: shop\n")
    with pytest.raises(AnsibleActionFail, match="names itself 'other'"):
        action.load_description(str(tmp_path), "app")
    with pytest.raises(AnsibleActionFail, match="is 'missing' in slipway_systems"):
        action.load_description(str(tmp_path), "missing")
    (tmp_path / "app" / "slipway.yml").write_text("name: app\nimages: [{context: .}]\n")
    with pytest.raises(AnsibleActionFail, match="must be a list of mappings with a 'name'"):
        action.load_description(str(tmp_path), "app")


def test_a_local_task_runs_the_engine_in_process_and_masks_secret_values(monkeypatch, action_for):
    seen = {}

    def fake_run(params, systems, check_mode, diff, progress, deferred=None):
        seen["secret"] = systems[0]["documents"][0]["content"]["stringData"]["k"]
        progress("app: ready")
        return {"changed": True, "echo": "value SENTINEL-unit-1234 leaked"}

    monkeypatch.setattr(action, "run_delivery", fake_run)
    plugin = action_for(action, {"context": "unit", "systems": ["app"], "rendered": rendered()}, "local")
    monkeypatch.setattr(plugin, "_execute_module", lambda **kw: pytest.fail("no module process for a local task"))
    result = plugin.deliver_here(dict(plugin._task.args))
    assert seen["secret"] == "SENTINEL-unit-1234"  # the engine gets the real value...
    assert "SENTINEL" not in json.dumps(result) and result["changed"]  # ...the output never does


def test_a_local_task_reports_bad_arguments_and_engine_errors_as_failures(action_for):
    plugin = action_for(action, {}, "local")
    assert "missing required arguments" in plugin.deliver_here({"systems": ["app"], "rendered": rendered()})["msg"]
    result = plugin.deliver_here({"context": "unit", "systems": ["app"], "rendered": rendered(),
                                  "api_url": "https://127.0.0.1:1", "request_timeout": 2})
    assert result["failed"] and "cannot reach the Kubernetes API" in result["msg"]
    assert "SENTINEL" not in json.dumps(result)


def test_a_remote_task_ships_the_module_with_secret_values_in_their_no_log_option(monkeypatch, action_for):
    sent = {}

    def fake_execute(module_name, module_args, task_vars):
        sent.update(module_args, name=module_name)
        return {"changed": False, "invocation": {"module_args": module_args}}

    plugin = action_for(action, {}, "ssh")
    monkeypatch.setattr(plugin, "_execute_module", fake_execute)
    result = plugin.deliver_by_module({"context": "unit", "systems": ["app"], "rendered": rendered()}, {})
    assert sent["name"] == "slipway.platform.deliver" and "invocation" not in result
    assert "SENTINEL" not in json.dumps(sent["rendered"])
    assert "SENTINEL-unit-1234" in json.dumps(sent["secret_data"])


def test_task_parameters_reach_the_engine_options(monkeypatch):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible_collections.slipway.platform.plugins.module_utils._release import deliver_task, rollback

    seen = {}
    monkeypatch.setattr(rollback, "deliver_or_roll_back",
                        lambda client, systems, options, on_failure, progress, deferred: seen.update(
                            options=options, on_failure=on_failure) or {"changed": False})
    params = ArgumentSpecValidator(deliver_task.DELIVER_SPEC).validate(
        {"context": "unit", "systems": ["app"], "rendered": rendered(), "api_url": "https://127.0.0.1:1",
         "retire": ["legacy"], "retire_absent": True, "on_failure": "rollback", "concurrency": 3}).validated_parameters
    deliver_task.run_delivery(params, rendered(), True, True, print)
    options = seen["options"]
    assert (options.retire, options.retire_absent, options.concurrency, options.check_mode, options.diff) == \
        (("legacy",), True, 3, True, True)
    assert seen["on_failure"] == "rollback"


def test_only_a_deferring_render_leaves_documents_to_the_engine_and_its_later_rendering_is_the_same(
        tmp_path, action_for):
    """``deployer_identity`` renders through the same plugin and needs every document: rendering defers only when the
    deliver task asks for it (a local connection), and a deferred system rendered later gives what rendering now did."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    (tmp_path / "app" / "deploy").mkdir(parents=True)
    (tmp_path / "app" / "slipway.yml").write_text("name: app\nnamespace: shop\nimages: [{name: app}]\n")
    (tmp_path / "app" / "deploy" / "a.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {image: '{{ images.app }}'}\n")
    args = {"context": "unit", "systems": ["app"], "ecosystem_root": str(tmp_path), "registry": "r:5001"}
    plugin = action_for(action, args, "local")
    plugin._templar = Templar(loader=DataLoader())
    now, _network = plugin.render(dict(args), {})
    assert now[0]["documents"][0]["content"]["data"] == {"image": "r:5001/app:latest"} and "inputs" not in now[0]
    later, _network = plugin.render(dict(args), {}, defer=True)
    assert later[0]["documents"] is None and len(later[0]["inputs"]) == 64
    assert plugin.render_deferred("app") == now[0]["documents"]
