"""Issue 14, item 17: a client polling every few seconds over one kept-alive connection, for a
minute, against the real web server (bin/web). With gunicorn's default keep-alive of 2 s the
server closed the idle connection just as the client reused it: "Remote end closed connection
without response", with nothing in the server log."""

from __future__ import annotations

import http.client
import time
import urllib.parse

import pytest

from tests import procs

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

POLL_SECONDS = 2.5  # a little over gunicorn's default keep-alive, as the pages' polls are
DURATION_SECONDS = 60


def test_a_polling_client_keeps_one_connection_for_a_minute(media_root):
    with procs.web(procs.service_env(MEDIA_ROOT=str(media_root), WEB_ACCESS_LOG="/dev/null")) as (web, url):
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        first_socket = None
        polls = 0
        deadline = time.monotonic() + DURATION_SECONDS
        while time.monotonic() < deadline:
            connection.request("GET", "/healthz")
            response = connection.getresponse()  # RemoteDisconnected when the server closed it meanwhile
            assert response.status == 200 and b'"ok": true' in response.read()
            first_socket = first_socket or connection.sock
            assert connection.sock is first_socket, "the server closed the kept-alive connection"
            polls += 1
            time.sleep(POLL_SECONDS)
        connection.close()
    assert polls >= DURATION_SECONDS // (POLL_SECONDS + 1)
