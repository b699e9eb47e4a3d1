"""REST API latency on a 100,000-image project, over HTTP to the real web server (bin/web,
gunicorn), one sequential client on loopback, authenticated with a DRF token as a script would be:

- list 100 images: GET /api/projects/<id>/images/?limit=100 at a random cursor position
- get one image with its annotations: GET /api/images/<id>/annotations/
- save 1 box + 2 tags: PUT /api/images/<id>/annotations/ {version, boxes, tags}

    python -m bench.api [--images 100000] [--repeat 200]

Label Studio 1.23.2 measured on this kind of machine: list 100 tasks 136 ms median / 320 ms p95,
get a task 96 ms median, save an annotation 220 ms median. Target: each ≤ one fifth of that.
A fresh embedded SQLite database under a temporary folder, or the database in DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path

LABEL_STUDIO_MS = {
    "list_100": {"median": 136, "p95": 320},
    "get_annotations": {"median": 96},
    "put_1_box_2_tags": {"median": 220},
}


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, machine_load, write_result

    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotator.models import Box, Image
    from annotator.services.projects import project_create
    from twinlabel.web.api.common import cursor_encode
    from bench._data import big_project
    from tests import procs
    from tests.factories import add_images

    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    token = Token.objects.create(user=user).key
    project = project_create(name=f"bench-api-{time.time_ns()}", user=user, labels=["cat", "dog", "bird"])
    (real,) = add_images(project, 1, size=(640, 480))
    labels = list(project.labels.values_list("id", flat=True))
    build_s = big_project(
        project=project, template=Image.objects.get(pk=real), images=args.images - 1, boxes_per_image=3, labels=labels
    )
    ids = list(Image.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    boxes = Box.objects.filter(image__project=project).count()
    vendor = connection.vendor
    print(f"built {len(ids)} images in {build_s:.1f} s ({vendor})")
    connection.close()
    env = procs.service_env(MEDIA_ROOT=os.environ["MEDIA_ROOT"], WEB_ACCESS_LOG="/dev/null", WEB_WORKERS="2")
    if not os.environ.get("DATABASE_URL"):
        env.pop("DATABASE_URL")
    rng = random.Random(0)
    times = {"list_100": [], "get_annotations": [], "put_1_box_2_tags": []}
    with procs.web(env) as (_, url):
        client = _Client(url, token)
        for _ in range(10):  # warm the workers' connections and caches
            client.call("GET", f"/api/projects/{project.id}/images/?limit=100")
        for _ in range(args.repeat):
            cursor = cursor_encode((rng.choice(ids[:-100]),))
            ms, page = client.call("GET", f"/api/projects/{project.id}/images/?limit=100&cursor={cursor}")
            assert len(page["results"]) == 100
            times["list_100"].append(ms)
            image_id = rng.choice(ids)
            ms, state = client.call("GET", f"/api/images/{image_id}/annotations/")
            times["get_annotations"].append(ms)
            body = {
                "version": state["image"]["version"],
                "tags": labels[:2],
                "boxes": [{"label": labels[0], "x": 10.0, "y": 20.0, "w": 30.0, "h": 40.0}],
            }
            ms, saved = client.call("PUT", f"/api/images/{image_id}/annotations/", body)
            assert len(saved["boxes"]) == 1 and len(saved["tags"]) == 2
            times["put_1_box_2_tags"].append(ms)
    figures = {
        "database": vendor,
        "images": len(ids),
        "boxes": boxes,
        "requests_each": args.repeat,
        "auth": "DRF token",
        "ms": {},
        "vs_label_studio": {},
    }
    for name, values in times.items():
        values.sort()
        stats = {"median": round(statistics.median(values), 2), "p95": round(values[int(0.95 * len(values)) - 1], 2)}
        figures["ms"][name] = stats
        figures["vs_label_studio"][name] = round(stats["median"] / LABEL_STUDIO_MS[name]["median"], 3)
        print(
            f"{name}: median {stats['median']} ms, p95 {stats['p95']} ms "
            f"(Label Studio median {LABEL_STUDIO_MS[name]['median']} ms)"
        )
    figures["label_studio_ms"] = LABEL_STUDIO_MS
    figures["target"] = "each median ≤ 0.2 of Label Studio's"
    figures["target_met"] = all(v <= 0.2 for v in figures["vs_label_studio"].values())
    figures["note"] = "the client, gunicorn (2 workers) and the database share the machine's cores."
    figures["load_average"] = machine_load(load_start)
    write_result(f"api_{vendor}", figures)


class _Client:
    def __init__(self, url: str, token: str):
        self.url = url
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def call(self, method: str, path: str, payload: dict | None = None) -> tuple[float, dict]:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data else {})}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        start = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            body = response.read()
        return (time.perf_counter() - start) * 1000, json.loads(body)


if __name__ == "__main__":
    main()
