# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every Slipway filter plugin shares: the pure function from module_utils does the work and checks the input;
its SlipwayError reaches the playbook as an AnsibleFilterError that names the filter (never a traceback)."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

COLLECTION = "slipway.platform"


def as_filter(name, func):
    """``{name: func}`` for ``FilterModule.filters()``, with SlipwayError turned into AnsibleFilterError."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SlipwayError as exc:
            raise AnsibleFilterError(f"{COLLECTION}.{name}: {exc.msg}") from None

    return {name: run}
