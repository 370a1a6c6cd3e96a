# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which CI server runs this process, and which job: read from the variables each server sets.

Jenkins and TeamCity do not set ``CI``, so looking at ``CI`` alone misses the two servers pipelines here run on.
Each server is recognised by a variable only it sets; the job's URL and build number come from its own variables.
``SLIPWAY_CI_JOB_URL`` overrides the URL everywhere (TeamCity exports none by default: its settings pass
``%teamcity.serverUrl%/viewLog.html?buildId=%teamcity.build.id%``), and ``SLIPWAY_CI_JOB`` names a job on a
server this module does not know.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class CiJob:
    server: str  # jenkins, teamcity, gitlab, github, other
    url: str | None = None
    build_number: str | None = None
    job: str | None = None

    def label(self):
        """One string naming the job, for holders and the journal's ``actor.ci_job``."""
        if self.url:
            return self.url
        number = f" #{self.build_number}" if self.build_number else ""
        return f"{self.server} {self.job or 'job'}{number}"

    def as_dict(self):
        return asdict(self)


def _github_url(env):
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None


def _set(env, name):
    return (env.get(name) or "").strip().lower() not in FALSE


def detect(env):
    """The CI job running this process (``env``: a mapping like ``os.environ``), or None outside CI."""
    override = env.get("SLIPWAY_CI_JOB_URL") or None
    if _set(env, "TEAMCITY_VERSION"):
        return CiJob("teamcity", override, env.get("BUILD_NUMBER"), env.get("TEAMCITY_BUILDCONF_NAME"))
    if _set(env, "JENKINS_URL") or _set(env, "JENKINS_HOME"):
        return CiJob("jenkins", override or env.get("BUILD_URL"), env.get("BUILD_NUMBER"), env.get("JOB_NAME"))
    if _set(env, "GITLAB_CI"):
        return CiJob("gitlab", override or env.get("CI_JOB_URL"), env.get("CI_PIPELINE_IID") or env.get("CI_JOB_ID"),
                     env.get("CI_JOB_NAME"))
    if _set(env, "GITHUB_ACTIONS"):
        return CiJob("github", override or _github_url(env), env.get("GITHUB_RUN_NUMBER"), env.get("GITHUB_JOB"))
    if _set(env, "CI") or _set(env, "SLIPWAY_CI_JOB") or env.get("BUILD_URL"):
        return CiJob("other", override or env.get("BUILD_URL"), env.get("BUILD_NUMBER"), env.get("SLIPWAY_CI_JOB"))
    return None
