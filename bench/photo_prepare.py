"""What import does to each camera photo (annotator.imaging.prepare_image: checks, decode, upright
re-encode of non-JPEG images EXIF says are rotated, thumbnail), before and after issue 20, in the same process on the
same files, alternating, so both see the same machine load.

    python -m bench.photo_prepare [--photos 20] [--before 35b5eac]

"Before" is annotator/imaging.py at ``--before`` (git show; the module needs only Pillow), "after"
is the working tree's. Photos: bench/_photos.py (4000×3000 JPEGs, every other one EXIF-rotated).
Reports images/s for upright and rotated photos separately and together; no database, no storage
writes (bench/import_throughput.py --photos times the whole import).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from bench._photos import write_photos
    from bench._util import int_options, machine_load, write_result

    parser = int_options(photos=20)
    parser.add_argument("--before", default="35b5eac", help="the commit whose imaging.py is 'before'")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="twinlabel-photo-prepare-"))
    source = subprocess.run(
        ["git", "show", f"{args.before}:annotator/imaging.py"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    (work / "imaging_before.py").write_text(source)
    before = _load("imaging_before", work / "imaging_before.py")
    after = _load("imaging_after", root / "annotator" / "imaging.py")
    paths = write_photos(work / "photos", args.photos)
    files = [p.read_bytes() for p in paths]
    seconds = {(name, kind): 0.0 for name in ("before", "after") for kind in ("upright", "rotated")}
    for i, data in enumerate(files):
        kind = "rotated" if i % 2 else "upright"  # write_photos: rotated ones at odd indices
        for name, module in (
            (("before", before), ("after", after)) if i % 4 < 2 else (("after", after), ("before", before))
        ):
            limits = module.Limits(max_bytes=200_000_000, max_pixels=100_000_000, max_side=20_000, thumbnail_size=256)
            start = time.perf_counter()
            module.prepare_image(data, limits)
            seconds[(name, kind)] += time.perf_counter() - start
    n = {"upright": (len(files) + 1) // 2, "rotated": len(files) // 2}
    figures: dict = {"photos": len(files), "width": 4000, "height": 3000, "before_commit": args.before}
    for name in ("before", "after"):
        total = seconds[(name, "upright")] + seconds[(name, "rotated")]
        figures[name] = {
            "upright_images_per_s": round(n["upright"] / seconds[(name, "upright")], 2),
            "rotated_images_per_s": round(n["rotated"] / seconds[(name, "rotated")], 2),
            "all_images_per_s": round(len(files) / total, 2),
        }
        print(f"{name:6s} " + "  ".join(f"{k} {v}" for k, v in figures[name].items()))
    figures["speedup_all"] = round(figures["after"]["all_images_per_s"] / figures["before"]["all_images_per_s"], 2)
    figures["speedup_upright"] = round(
        figures["after"]["upright_images_per_s"] / figures["before"]["upright_images_per_s"], 2
    )
    figures["load_average"] = machine_load(load_start)
    print(f"after / before: {figures['speedup_all']}x overall, {figures['speedup_upright']}x for upright photos")
    write_result("photo_prepare", figures)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


if __name__ == "__main__":
    main()
