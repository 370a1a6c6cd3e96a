# SPDX-License-Identifier: GPL-3.0-or-later
"""The shop's worker: fulfils new orders, announced on the bus or found by polling the backend."""

__version__ = "1.0.0"
