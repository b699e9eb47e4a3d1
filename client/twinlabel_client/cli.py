"""The ``twinlabel`` command: log in once (the URL and token are kept in ~/.config/twinlabel/client.json,
mode 600, or come from TWINLABEL_URL / TWINLABEL_TOKEN), then work on projects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from twinlabel_client.api import ApiError, Client

CONFIG = Path(os.environ.get("TWINLABEL_CONFIG", Path.home() / ".config" / "twinlabel" / "client.json"))


def _client() -> Client:
    saved = json.loads(CONFIG.read_text()) if CONFIG.exists() else {}
    url, token = (
        os.environ.get("TWINLABEL_URL", saved.get("url")),
        os.environ.get("TWINLABEL_TOKEN", saved.get("token")),
    )
    if not url or not token:
        raise SystemExit("Log in first: twinlabel login --url URL --token TOKEN (your token is on the Account page).")
    return Client(url, token)


def _print(value: object) -> None:
    print(json.dumps(value, indent=2))


def _login(args: argparse.Namespace) -> None:
    Client(args.url, args.token).projects()  # refused tokens fail here, not at the first real command
    CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CONFIG.write_text(json.dumps({"url": args.url, "token": args.token}))
    CONFIG.chmod(0o600)
    print(f"Logged in to {args.url}; kept in {CONFIG}.")


def _upload(args: argparse.Namespace) -> None:
    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files", end="", file=sys.stderr, flush=True)

    report = _client().upload(
        args.project, Path(args.folder), batch=args.batch, workers=args.workers, progress=progress
    )
    print(file=sys.stderr)
    _print(report)


def _run(args: argparse.Namespace) -> None:
    client = _client()
    run = client.run_start(args.project, args.kind, json.loads(args.config) if args.config else None, args.confirm)
    if args.wait:

        def progress(r: dict) -> None:
            loss = f" loss {r['loss']:.4f}" if r.get("loss") is not None else ""
            print(
                f"\rrun {r['id']}: {r['status']} epoch {r['epoch']}/{r['epochs']} step {r['step']}{loss}   ",
                end="",
                file=sys.stderr,
                flush=True,
            )

        run = client.run_wait(run["id"], poll_s=args.poll, progress=progress)
        print(file=sys.stderr)
    _print(run)
    if args.wait and run["status"] != "succeeded":
        raise SystemExit(1)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinlabel", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("login", help="check and keep the server's URL and your API token")
    s.add_argument("--url", required=True)
    s.add_argument("--token", required=True)
    s.set_defaults(func=_login)
    s = sub.add_parser("projects", help="list your projects")
    s.set_defaults(func=lambda a: _print(_client().projects()))
    s = sub.add_parser("project", help="create a project")
    s.add_argument("action", choices=["create"])
    s.add_argument("name")
    s.add_argument("--labels", nargs="*", default=[])
    s.add_argument("--description", default="")
    s.set_defaults(func=lambda a: _print(_client().project_create(a.name, a.labels, a.description)))
    s = sub.add_parser("upload", help="upload a folder's images (and zips) in parallel; re-runs resume")
    s.add_argument("project", type=int)
    s.add_argument("folder")
    s.add_argument("--batch", type=int, default=20)
    s.add_argument("--workers", type=int, default=4)
    s.set_defaults(func=_upload)
    s = sub.add_parser("predictions", help="push a model's predictions (json, coco results, yolo with confidence)")
    s.add_argument("project", type=int)
    s.add_argument("files", nargs="+")
    s.add_argument("--format", required=True, choices=["json", "coco", "yolo"])
    s.add_argument("--model-version", default="")
    s.add_argument("--tags-from-boxes", action="store_true")
    s.set_defaults(
        func=lambda a: _print(
            _client().predictions_push(
                a.project,
                [Path(f) for f in a.files],
                fmt=a.format,
                model_version=a.model_version,
                tags_from_boxes=a.tags_from_boxes,
            )
        )
    )
    s = sub.add_parser("import", help="import annotation files")
    s.add_argument("project", type=int)
    s.add_argument("files", nargs="+")
    s.add_argument("--format", required=True)
    s.set_defaults(
        func=lambda a: _print(_client().annotations_import(a.project, [Path(f) for f in a.files], fmt=a.format))
    )
    s = sub.add_parser("export", help="export annotations (a big export waits for its job)")
    s.add_argument("project", type=int)
    s.add_argument("--format", required=True)
    s.add_argument("--status", default="submitted")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=lambda a: print(_client().export(a.project, Path(a.output), fmt=a.format, status=a.status)))
    s = sub.add_parser("run", help="start a pretraining or a probe fit, and optionally wait for it")
    s.add_argument("project", type=int)
    s.add_argument("--kind", required=True, choices=["pretrain", "probe"])
    s.add_argument("--config", help="pretraining settings as JSON, e.g. '{\"epochs\": 1}'")
    s.add_argument("--confirm", action="store_true", help="start a long pretraining without asking")
    s.add_argument("--wait", action="store_true")
    s.add_argument("--poll", type=float, default=2.0)
    s.set_defaults(func=_run)
    s = sub.add_parser("suggestions", help="list the current suggestions")
    s.add_argument("project", type=int)
    s.add_argument("--label", type=int)
    s.add_argument("--predicted", choices=["true", "false"])
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(
        func=lambda a: _print(
            _client().suggestions(
                a.project,
                **{
                    k: v
                    for k, v in {"label": a.label, "predicted": a.predicted, "limit": a.limit}.items()
                    if v is not None
                },
            )
        )
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except ApiError as error:
        raise SystemExit(f"The server said {error.status}: {error.message}") from None


if __name__ == "__main__":
    main()
