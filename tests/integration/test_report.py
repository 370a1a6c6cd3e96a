"""playbooks/report.yml after real deliveries, read in headless Chromium (Debian's chromium and chromium-driver,
through selenium) with JavaScript off: what runs, the history, the diffs, the failure and its reason - and no
secret value anywhere in the page."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from fixtures.deliver.support import configmap, context_inventory, grant_namespace, run, system, unique
from test_deliver_playbook import recap_changed

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TOKENS = ("SENTINEL-report-first", "SENTINEL-report-second")
TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ system.name }}-config
data:
  greeting: "{{ values.greeting | default('hello') }}"
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ system.name }}-secret
stringData:
  token: "{{ report_token }}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ system.name }}
spec:
  replicas: {{ values.replicas | default(0) }}
  progressDeadlineSeconds: {{ values.progress_deadline | default(600) }}
  selector:
    matchLabels: {app: {{ system.name }}}
  template:
    metadata:
      labels: {app: {{ system.name }}}
    spec:
      nodeSelector: {slipway.io/node-kind: {{ values.node_kind | default('simulated') }}}
      containers:
        - name: app
          image: "{{ images[system.name] }}"
          envFrom:
            - secretRef: {name: {{ system.name }}-secret}
"""


@pytest.fixture(scope="module")
def push(stack, docker, stack_dir):
    """Build a tiny image of its own (one label on the stack's busybox), push it; its reference by digest."""
    registry = stack["SLIPWAY_REGISTRY"]
    password = (stack_dir / "secrets" / "registry-password").read_text().strip()
    docker("login", "--username", "slipway", "--password-stdin", registry, input=password)

    def build_and_push(name):
        tag = f"{registry}/slipway-test/report-{name}:{uuid.uuid4().hex[:12]}"
        docker("build", "-q", "-t", tag, "-", input=f"FROM slipway/busybox:stable\nLABEL unique={tag}\n")
        docker("push", tag)
        digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", tag).stdout)
        return next(d for d in digests if d.startswith(tag.rsplit(":", 1)[0] + "@sha256:"))
    return build_and_push


@pytest.fixture
def shop(stack_dir, kubectl, context, tmp_path):
    """Two systems (alpha, beta) in a namespace of their own, delivered through playbooks/deliver.yml."""
    namespace = grant_namespace(kubectl, unique("t-report"))
    eco = tmp_path / "eco"
    for name in ("alpha", "beta"):
        (eco / name / "deploy").mkdir(parents=True)
        (eco / name / "slipway.yml").write_text(yaml.safe_dump(
            {"name": name, "namespace": namespace, "depends_on": [], "images": [{"name": name, "context": "."}],
             "manifests": "deploy"}))
        (eco / name / "deploy" / "app.yaml.j2").write_text(TEMPLATE)
    reports = tmp_path / "reports"
    reports.mkdir()
    inventory = context_inventory(tmp_path / "inventory", stack_dir, **{
        "slipway_context": context, "slipway_ecosystem_root": str(eco), "slipway_reports_dir": str(reports),
        "slipway_deliver_wait_timeout": 90, "slipway_deliver_on_failure": "rollback"})
    yield {"namespace": namespace, "context": context, "inventory": inventory, "reports": reports, "tmp": tmp_path}
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def playbook(shop, book, *args):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(shop["inventory"]),
                           str(ROOT / "playbooks" / book), *args],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600, check=False)


def deliver(shop, images, token, **variables):
    (shop["reports"] / f"images-{shop['context']}.json").write_text(json.dumps(images))  # the build step's report
    return playbook(shop, "deliver.yml", "-e", f"report_token={token}",
                    "-e", json.dumps(dict({"slipway_systems": sorted(images)}, **variables)))


@pytest.fixture
def showroom(stack_dir, kubectl, shop):
    """A second context, named as a showroom, with one release: the report shows every journal it can read."""
    name = unique("showroom-t")
    run(stack_dir, [system("room", shop["namespace"], configmap("room-config", shown="yes"))], name)
    yield name
    for selector in (f"slipway.io/context={name}", f"slipway.io/snapshot-of={name}"):
        kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)
    kubectl("delete", "lease", f"slipway-lock-{name}", "-n", "slipway-system", "--ignore-not-found", check=False)


@pytest.fixture
def browser():
    """Headless Chromium with JavaScript off for the pages it opens (the report must not need it)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are missing: run hack/setup.sh (make setup)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1800"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_the_report_shows_the_releases_just_made_in_chromium(shop, showroom, push, browser):
    from selenium.webdriver.common.by import By

    alpha_one, alpha_two, beta = push("alpha"), push("alpha"), push("beta")
    first = deliver(shop, {"alpha": alpha_one}, TOKENS[0], slipway_system_values={"alpha": {"greeting": "one"}})
    assert first.returncode == 0, first.stdout + first.stderr
    second = deliver(shop, {"alpha": alpha_two, "beta": beta}, TOKENS[1],
                     slipway_system_values={"alpha": {"greeting": "two"}})
    assert second.returncode == 0, second.stdout + second.stderr
    # the releases that succeed run no pod (the report needs their records, not pods on busy simulated nodes); this
    # one asks for a pod no node may take, so its rollout fails fast and the release before it comes back
    stuck = {"alpha": {"greeting": "three", "replicas": 1, "node_kind": "nowhere", "progress_deadline": 3}}
    # alpha alone: a Deployment of beta's waited for in the same run would start the namespace's watch before
    # alpha's update, and a copy from before it would pass for ready (the wait hub's race, reported separately)
    failed = deliver(shop, {"alpha": alpha_two}, TOKENS[1], slipway_system_values=stuck)
    assert failed.returncode != 0 and "ProgressDeadlineExceeded" in failed.stdout, failed.stdout + failed.stderr

    page = shop["tmp"] / "out" / "releases.html"
    written = playbook(shop, "report.yml", "-e", f"slipway_report_path={page}")
    assert written.returncode == 0, written.stdout + written.stderr
    assert recap_changed(written.stdout) == 1
    # Other contexts of the shared stack may record releases meanwhile: the page of this context alone is the one
    # that must stay the same.
    alone = shop["tmp"] / "out" / "alone.html"
    for expected in (1, 0):
        done = playbook(shop, "report.yml", "-e", f"slipway_report_path={alone}",
                        "-e", "slipway_report_all_contexts=false")
        assert done.returncode == 0 and recap_changed(done.stdout) == expected, done.stdout + done.stderr

    for html in (page.read_text(), alone.read_text()):
        for token in TOKENS:
            assert token not in html and base64.b64encode(token.encode()).decode() not in html

    browser.get(alone.as_uri())
    screenshot = shop["tmp"] / "release-report.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SLIPWAY_REPORT_SCREENSHOT"):  # how docs/images/release-report.png is refreshed
        shutil.copyfile(screenshot, os.environ["SLIPWAY_REPORT_SCREENSHOT"])
    assert [s.get_attribute("data-context") for s in browser.find_elements(By.CSS_SELECTOR, "section.context")] \
        == [shop["context"]]

    browser.get(page.as_uri())
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert browser.find_elements(By.CSS_SELECTOR, "link, img, iframe, [src]") == []

    context = shop["context"]
    section = browser.find_element(By.CSS_SELECTOR, f'section.context[data-context="{context}"]')
    assert section.get_attribute("data-kind") == "context"
    rows = section.find_elements(By.CSS_SELECTOR, "table.running tbody tr")
    images = {row.get_attribute("data-system"): [code.text for code in row.find_elements(By.CSS_SELECTOR, "code.image")]
              for row in rows}
    assert images == {"alpha": [alpha_two], "beta": [beta]}  # the rollback put release 2 back

    history = [(row.get_attribute("data-revision"), row.find_elements(By.TAG_NAME, "td")[1].text,
                row.find_element(By.CSS_SELECTOR, ".outcome").text)
               for row in section.find_elements(By.CSS_SELECTOR, "table.history tbody tr")]
    assert history == [("4", "rollback", "succeeded"), ("3", "deliver", "failed"), ("2", "deliver", "succeeded"),
                       ("1", "deliver", "succeeded")]

    second_release = section.find_element(By.CSS_SELECTOR, '.release[data-revision="2"] .pair')
    lines = second_release.find_element(By.CSS_SELECTOR, "ul.lines").text
    assert f"+ beta ({shop['namespace']})" in lines and alpha_one[-64:][:12] in lines and alpha_two[-64:][:12] in lines
    manifests = second_release.find_element(By.CSS_SELECTOR, "details.manifests")
    assert manifests.find_element(By.CSS_SELECTOR, ".object").text == ""  # folded until opened
    manifests.find_element(By.TAG_NAME, "summary").click()  # the browser's own <details>, no script
    changed = {o.find_element(By.TAG_NAME, "p").text: o.find_element(By.CSS_SELECTOR, "pre.diff").text
               for o in manifests.find_elements(By.CSS_SELECTOR, ".object")}
    secret = changed[f"alpha: Secret {shop['namespace']}/alpha-secret changed"]
    assert "<redacted hmac:" in secret and "SENTINEL" not in secret
    config = changed[f"alpha: ConfigMap {shop['namespace']}/alpha-config changed"]
    assert '- "greeting": "one"' in " ".join(config.split()) and '+ "greeting": "two"' in " ".join(config.split())

    compare = section.find_element(By.CSS_SELECTOR, 'details.compare[data-to="4"]')
    compare.find_element(By.TAG_NAME, "summary").click()
    assert {pair.get_attribute("data-from") for pair in compare.find_elements(By.CSS_SELECTOR, ".pair")} == {"1", "2"}

    failure = browser.find_element(By.CSS_SELECTOR, f'table.failures tr[data-context="{context}"][data-revision="3"]')
    assert "ProgressDeadlineExceeded" in failure.find_element(By.CSS_SELECTOR, ".reason").text
    room = browser.find_element(By.CSS_SELECTOR, f'section.context[data-context="{showroom}"]')
    assert room.get_attribute("data-kind") == "showroom" and "room" in room.find_element(
        By.CSS_SELECTOR, "table.running").text
    assert "SENTINEL" not in browser.find_element(By.TAG_NAME, "body").text
