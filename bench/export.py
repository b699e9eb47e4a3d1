"""COCO export of a big project: seconds and peak memory, on the embedded SQLite or the database
in DATABASE_URL.

    python -m bench.export [--images 100000] [--boxes-per-image 3] [--formats coco csv json yolo voc]

Builds a project of 100,000 images with 300,000 boxes (bench/_data.py), then runs each export in a
fresh child process (the code the API and ``manage.py export`` run: annotator.exports.export_stream),
writing the file to disk. Peak memory is the child's maximum resident set size (the whole Python
process with Django loaded, not only the export). Label Studio 1.23.2 exported 500 annotated tasks
as COCO in 0.86 s on this kind of machine. Target: ≥ 20,000 images/s and < 300 MB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABEL_STUDIO = {"tasks": 500, "seconds": 0.86, "images_per_s": round(500 / 0.86, 1)}


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes-per-image", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["coco"])
    parser.add_argument("--child", nargs=3, metavar=("PROJECT", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        return _child(*args.child)
    from bench._util import django_setup, machine_load, write_result

    work = django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotator.models import Image
    from annotator.services.projects import project_create
    from bench._data import big_project
    from tests.factories import add_images

    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    project = project_create(
        name=f"bench-export-{time.time_ns()}", user=user, labels=["cat", "dog", "bird", "car", "tree", "person"]
    )
    (real,) = add_images(project, 1, size=(640, 480))
    Image.objects.filter(pk=real).update(original_name="template.png")
    template = Image.objects.get(pk=real)
    labels = list(project.labels.values_list("id", flat=True))
    for k in range(args.boxes_per_image):  # the template image gets its boxes too: exactly images × boxes
        template.boxes.create(label_id=labels[k % len(labels)], x=10.0 * k, y=10.0, w=50.0, h=40.0)
    build_s = big_project(
        project=project, template=template, images=args.images - 1, boxes_per_image=args.boxes_per_image, labels=labels
    )
    counts = {
        "images": Image.objects.filter(project=project).count(),
        "boxes": template.boxes.model.objects.filter(image__project=project).count(),
    }
    print(f"built {counts['images']} images, {counts['boxes']} boxes in {build_s:.1f} s ({connection.vendor})")
    vendor = connection.vendor
    connection.close()
    figures = {"database": vendor, **counts, "build_s": round(build_s, 1), "exports": {}}
    for fmt in args.formats:
        out = work / f"export.{fmt}"
        child = subprocess.run(
            [sys.executable, "-m", "bench.export", "--child", str(project.id), fmt, str(out)],
            cwd=ROOT,
            env=os.environ,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["images_per_s"] = round(counts["images"] / result["seconds"])
        figures["exports"][fmt] = result
        print(
            f"{fmt}: {result['seconds']} s, {result['images_per_s']} images/s, {result['mb']} MB written, "
            f"peak RSS {result['peak_rss_mb']} MB (process baseline {result['baseline_rss_mb']} MB)"
        )
        if fmt == "coco":
            doc = json.loads(out.read_bytes())  # the file is whole and valid JSON
            assert len(doc["images"]) == counts["images"] and len(doc["annotations"]) == counts["boxes"]
        out.unlink()
    coco = figures["exports"].get("coco")
    if coco:
        figures["vs_label_studio"] = round(coco["images_per_s"] / LABEL_STUDIO["images_per_s"], 1)
        figures["target_met"] = coco["images_per_s"] >= 20_000 and coco["peak_rss_mb"] < 300
    figures["label_studio"] = LABEL_STUDIO
    figures["target"] = "≥ 20,000 images/s and < 300 MB peak (COCO, 100,000 images, 300,000 boxes)"
    figures["load_average"] = machine_load(load_start)
    figures["note"] = (
        "peak_rss_mb is the export process's own peak resident set (VmHWM: Python + Django + the "
        "export); baseline_rss_mb is its resident set just before the export began."
    )
    write_result(f"export_{vendor}", figures)


def _child(project_id: str, fmt: str, out: str) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinlabel.settings")
    django.setup()
    from annotator.exports import ExportOptions, export_stream
    from annotator.models import Project

    project = Project.objects.get(pk=int(project_id))
    baseline = _memory_mb("VmRSS")
    start = time.perf_counter()
    size = 0
    with open(out, "wb") as f:
        for chunk in export_stream(project=project, options=ExportOptions(format=fmt, status="all")):
            f.write(chunk)
            size += len(chunk)
    seconds = time.perf_counter() - start
    peak = _memory_mb("VmHWM")
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "mb": round(size / 1e6, 1),
                "baseline_rss_mb": round(baseline, 1),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


def _memory_mb(field: str) -> float:
    # VmHWM is this process's own peak resident set. (ru_maxrss is not: on Linux a child starts
    # with its parent's high-water mark, which here held the previous export's parsed check.)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


if __name__ == "__main__":
    main()
