"""A logged-in HTTP client for benchmarks that talk to the real web server (bin/web)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import secrets
import time
import urllib.parse
import urllib.request


class Session:
    def __init__(self, url: str, username: str, password: str):
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        page = self.opener.open(f"{url}/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        self.opener.open(f"{url}/accounts/login/", body.encode()).read()

    @property
    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"):
        headers = {"X-CSRFToken": self.csrf}
        if body is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        with self.opener.open(request) as response:
            return response.status, response.read()

    def json(self, method: str, path: str, payload: dict | None = None) -> tuple[float, dict]:
        """(milliseconds, answer) of one JSON request."""
        body = None if payload is None else json.dumps(payload).encode()
        start = time.perf_counter()
        _, raw = self.request(method, path, body)
        return (time.perf_counter() - start) * 1000, json.loads(raw)


def multipart(
    files: list[tuple[str, bytes]], fields: dict[str, str] | None = None, file_type: str = "application/octet-stream"
) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data upload: ``fields`` as plain parts, then each
    (name, data) of ``files`` as a part named "files" of type ``file_type``."""
    boundary = secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in (fields or {}).items()
    ]
    parts += [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        f"Content-Type: {file_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
