# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TeamCity service messages: ``##teamcity[name key='value' ...]`` lines a build's output carries.

Values are escaped as TeamCity's documentation says: ``|`` ``'`` ``[`` ``]`` and the line breaks get a ``|`` before
them (``||`` ``|'`` ``|[`` ``|]`` ``|n`` ``|r``; next line, line and paragraph separators ``|x`` ``|l`` ``|p``);
without it a system name holding ``]`` ends the message early. Properties are written sorted by name, as
JetBrains' own writer (the ``teamcity-messages`` package) does, so the two are comparable byte for byte.
"""

from __future__ import annotations

_ESCAPES = {"|": "||", "'": "|'", "[": "|[", "]": "|]", "\n": "|n", "\r": "|r", "\u0085": "|x", "\u2028": "|l",
            "\u2029": "|p"}
DESCRIPTION_CHARS = 4000  # TeamCity cuts a build problem's description there
IDENTITY_CHARS = 60  # and refuses a longer identity


def escape(value):
    return "".join(_ESCAPES.get(char, char) for char in str(value))


def service_message(message, /, **properties):
    """One service message line (without the newline); properties that are None are left out."""
    body = "".join(f" {key}='{escape(value)}'" for key, value in sorted(properties.items()) if value is not None)
    return f"##teamcity[{message}{body}]"


def build_problem(description, identity):
    """A build problem: TeamCity fails the build and groups problems of the same identity across builds."""
    return service_message("buildProblem", description=str(description)[:DESCRIPTION_CHARS],
                           identity=str(identity)[:IDENTITY_CHARS])


def statistics(prefix, values):
    """``buildStatisticValue`` messages for every number in ``values`` (``{key: number}``), keys under ``prefix``."""
    return [service_message("buildStatisticValue", key=f"{prefix}.{key}", value=f"{value:g}")
            for key, value in sorted(values.items()) if isinstance(value, (int, float)) and not isinstance(value, bool)]
