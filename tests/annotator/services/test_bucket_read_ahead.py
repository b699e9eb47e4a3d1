"""The bucket import's read-ahead: objects come back in listing order, at most ``window`` GETs are in
flight, a refusal passes through unread, and a failed GET reads as an OSError (reported, not fatal)."""

import io
import threading
import time

import pytest

from annotator.services.bucket_import import _read_ahead
from annotator.sources import ImageSource, Rejection


class FakeS3:
    def __init__(self, fail: set[str] = frozenset()):
        self.fail, self.lock, self.now, self.most = fail, threading.Lock(), 0, 0

    def get_object(self, Bucket, Key):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.01)
        with self.lock:
            self.now -= 1
        if Key in self.fail:
            raise RuntimeError(f"NoSuchKey {Key}")
        return {"Body": io.BytesIO(Key.encode())}


def test_it_keeps_the_order_bounds_the_gets_in_flight_and_reports_a_failed_read():
    client = FakeS3(fail={"k7"})
    items = [f"k{n}" for n in range(20)]
    items.insert(5, Rejection("big.jpg", "too big"))
    out = list(_read_ahead(client, "b", items, window=4))
    assert [o.name for o in out] == [i.name if isinstance(i, Rejection) else i for i in items]
    assert isinstance(out[5], Rejection)
    sources = [o for o in out if isinstance(o, ImageSource)]
    assert [s.read() for s in sources if s.name != "k7"] == [s.name.encode() for s in sources if s.name != "k7"]
    with pytest.raises(OSError, match="NoSuchKey k7"):
        next(s for s in sources if s.name == "k7").read()
    assert 1 < client.most <= 4
