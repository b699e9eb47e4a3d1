"""What every browser test does first: log in through the real login page."""

from __future__ import annotations

import re


def log_in(page, url: str, username: str) -> None:
    """Log ``username`` in (factories.make_user's password) and wait for the project list."""
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))
