# SPDX-License-Identifier: GPL-3.0-or-later
"""The shop's worker: polls the backend for new orders and fulfils them."""

__version__ = "1.0.0"
