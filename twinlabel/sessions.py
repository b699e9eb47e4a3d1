"""Django's database sessions, with the session read by a query compiled once (annotator.compiled):
every request the annotate page makes loads its session first."""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone

from annotator.compiled import Compiled


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        session = _SESSION.first(session_key=self.session_key, now=timezone.now())
        if session is None:
            self._session_key = None  # as Django's: an unknown or expired key starts a new session
        return session


def _live_session(session_key: str, now):
    return SessionStore.get_model_class().objects.filter(session_key=session_key, expire_date__gt=now)[:1]


_SESSION = Compiled(_live_session, {"session_key": "str", "now": "datetime"})
