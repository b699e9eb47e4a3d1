"""A client for a Twinlabel server's REST API, and the ``twinlabel`` command (cli.py)."""

from twinlabel_client.api import ApiError, Client

__all__ = ["ApiError", "Client"]
