# SPDX-License-Identifier: GPL-3.0-or-later
"""The shop's backend: a small JSON API over an in-memory catalogue and order book."""

__version__ = "1.0.0"
