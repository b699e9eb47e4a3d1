"""A zip archive written as a stream of chunks: zipfile writes to an unseekable sink (so it uses
data descriptors), and each member's bytes are handed on as soon as they are written."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:  # part of the writable-file protocol; zipfile never closes a file it was given
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zip_stream(members: Iterable[tuple[str, bytes]], *, chunk: int = 1 << 16) -> Iterator[bytes]:
    sink = _Sink()
    pending = 0
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in members:
            archive.writestr(name, data)
            pending += len(data)
            if pending >= chunk:
                yield sink.take()
                pending = 0
    yield sink.take()
