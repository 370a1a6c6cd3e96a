"""The pipelines to start from: the Jenkinsfile parses with Groovy's own parser, and every shell step of it and of
the TeamCity settings is a command docs/ci.md gives, word for word."""

from __future__ import annotations

import base64
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROOVY = ("org.apache.groovy", "groovy", "5.0.8")
SH_STEPS = Path(__file__).with_name("pipelines") / "sh_steps.groovy"
KOTLIN_SYNTAX = Path(__file__).with_name("pipelines") / "KotlinSyntax.java"
# Kotlin's compiler from Maven Central and what its POM depends on; TeamCity's DSL library is not there
KOTLIN = (("org.jetbrains.kotlin", "kotlin-compiler-embeddable", "2.4.21"),
          ("org.jetbrains.kotlin", "kotlin-stdlib", "2.4.21"),
          ("org.jetbrains.kotlin", "kotlin-script-runtime", "2.4.21"),
          ("org.jetbrains.kotlin", "kotlin-reflect", "1.6.10"),
          ("org.jetbrains.kotlin", "kotlin-daemon-embeddable", "2.4.21"),
          ("org.jetbrains.kotlinx", "kotlinx-coroutines-core-jvm", "1.8.0"),
          ("org.jetbrains", "annotations", "13.0"))


def maven_jar(group, artifact, version):
    repository = Path(os.environ.get("MAVEN_REPOSITORY", Path.home() / ".m2" / "repository"))
    return repository.joinpath(*group.split("."), artifact, version, f"{artifact}-{version}.jar")


def groovy_jar():
    """Groovy from Maven Central, fetched once into the local Maven repository."""
    group, artifact, version = GROOVY
    jar = maven_jar(group, artifact, version)
    if not jar.exists():
        if not shutil.which("mvn"):
            pytest.fail(f"{jar} is missing and mvn is not installed to fetch it")
        subprocess.run(["mvn", "-q", "dependency:get", f"-Dartifact={group}:{artifact}:{version}"], check=True,
                       cwd=str(ROOT), timeout=600)
    return jar


@functools.cache
def sh_steps(jenkinsfile):
    """The scripts of the file's `sh` steps, from Groovy's syntax tree (raises when the file does not parse)."""
    java = shutil.which("java")
    if not java:
        pytest.fail("java is not installed (Java 17 runs Groovy's parser)")
    done = subprocess.run([java, "-cp", str(groovy_jar()), "groovy.ui.GroovyMain", str(SH_STEPS), str(jenkinsfile)],
                          capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"{jenkinsfile} does not parse:\n{done.stderr}")
    return tuple(base64.b64decode(line).decode() for line in done.stdout.split())


def documented_commands():
    """Every line of docs/ci.md's ```sh blocks."""
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return {line.strip() for block in blocks for line in block.splitlines() if line.strip()}


def teamcity_scripts():
    """The TeamCity settings' scriptContent strings, with Kotlin's ${'$'} read as $."""
    text = (ROOT / ".teamcity" / "settings.kts").read_text(encoding="utf-8")
    scripts = re.findall(r'scriptContent = """(.*?)"""(?!")', text, flags=re.S)
    return [script.replace("${'$'}", "$") for script in scripts]


def test_the_jenkinsfile_parses_and_runs_only_documented_commands():
    steps = sh_steps(ROOT / "Jenkinsfile")
    documented = documented_commands()
    assert len(steps) >= 8  # client, integrate, build, test, deliver, rollback, provision, release the hold
    assert [step.strip() for step in steps if step.strip() not in documented] == []
    assert any("playbooks/release_hold.yml" in step for step in steps)


def test_every_documented_pipeline_command_is_in_both_pipelines():
    jenkins = {step.strip() for step in sh_steps(ROOT / "Jenkinsfile")}
    teamcity = {script.strip() for script in teamcity_scripts()}
    assert documented_commands() == jenkins == teamcity


def test_a_jenkinsfile_that_does_not_parse_is_caught(tmp_path):
    broken = tmp_path / "Jenkinsfile"
    broken.write_text("pipeline {\n  stages { stage('x') { steps { sh 'true' }\n}\n")
    with pytest.raises(AssertionError, match="does not parse"):
        sh_steps(broken)


def test_the_vault_password_script_hands_the_ci_secret_to_ansible_vault(tmp_path):
    script, vault = ROOT / "hack" / "vault-password.sh", ROOT / ".venv" / "bin" / "ansible-vault"
    env = dict(os.environ, SLIPWAY_VAULT_PASSWORD="s3cret from the CI store")
    secret = tmp_path / "secret.yml"
    secret.write_text("token: abc\n")
    subprocess.run([str(vault), "encrypt", "--vault-password-file", str(script), str(secret)], env=env, check=True,
                   capture_output=True, timeout=60)
    assert secret.read_text().startswith("$ANSIBLE_VAULT;")
    shown = subprocess.run([str(vault), "view", "--vault-password-file", str(script), str(secret)], env=env,
                           check=True, capture_output=True, text=True, timeout=60)
    assert shown.stdout == "token: abc\n"
    unset = subprocess.run([str(script)], env={k: v for k, v in env.items() if k != "SLIPWAY_VAULT_PASSWORD"},
                           capture_output=True, text=True, check=False)
    assert unset.returncode == 1 and "SLIPWAY_VAULT_PASSWORD is not set" in unset.stderr


def kotlin_syntax(*scripts):
    """Kotlin's own parser on ``scripts``: ``(exit code, output)``. Runs only when the compiler is in the local Maven
    repository (`mvn dependency:get -Dartifact=org.jetbrains.kotlin:kotlin-compiler-embeddable:2.4.21` puts it
    there, with its dependencies): a download of that size is not a unit test's to make."""
    jars = [maven_jar(*coordinates) for coordinates in KOTLIN]
    missing = [jar.name for jar in jars if not jar.exists()]
    if missing or not shutil.which("java"):
        pytest.skip(f"Kotlin's compiler is not in the local Maven repository ({', '.join(missing) or 'no java'})")
    done = subprocess.run(["java", "-cp", os.pathsep.join(map(str, jars)), str(KOTLIN_SYNTAX), *map(str, scripts)],
                          capture_output=True, text=True, check=False, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_the_teamcity_settings_parse_as_a_kotlin_script():
    code, output = kotlin_syntax(ROOT / ".teamcity" / "settings.kts")
    assert code == 0, output
    assert "script=true syntax errors=0" in output


def test_a_kotlin_script_with_a_syntax_error_is_caught(tmp_path):
    broken = tmp_path / "settings.kts"
    settings = (ROOT / ".teamcity" / "settings.kts").read_text()
    broken.write_text(settings.replace("buildType(Provision)", "buildType(Provision"))
    code, output = kotlin_syntax(broken)
    assert code == 1 and "Expecting ')'" in output, output
