# SPDX-License-Identifier: GPL-3.0-or-later
"""A minimal JSON client for the backend API."""

import json
import urllib.error
import urllib.request


class BackendError(RuntimeError):
    """The backend did not answer, or answered with an error."""


class Backend:
    def __init__(self, base_url, timeout=5.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            raise BackendError(f"{path}: HTTP {err.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise BackendError(f"{path}: {err}") from None

    def new_orders(self):
        return self.call("/api/orders?status=new")["orders"]

    def fulfil(self, order_id):
        return self.call(f"/api/orders/{order_id}/fulfil", {})
