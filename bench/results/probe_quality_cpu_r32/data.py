"""Render demo scenes once, store at several resolutions (same split indexing as bench)."""
import os, sys, tempfile, time, numpy as np
# data.py writes the rendered scenes here, the others read them: $SCENES, else the temp folder
SCENES = os.environ.get("SCENES", os.path.join(tempfile.gettempdir(), "exp", "scenes.npz"))
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))  # the repository
from annotator.demo.scenes import LABELS, render_scene
from labeling.ml.cache import decode_square
N = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
res = (24, 32, 48, 64)
imgs = {r: np.empty((N, r, r, 3), np.uint8) for r in res}
labels = np.zeros((N, len(LABELS)), bool)
t = time.time()
for k in range(N):
    s = render_scene(k, seed=0, size=(256, 256))
    for r in res:
        imgs[r][k] = decode_square(s.image, r)
    labels[k] = [n in s.labels for n in LABELS]
np.savez(SCENES, labels=labels, **{f"x{r}": imgs[r] for r in res})
print("done", time.time() - t, labels.mean(0), labels.mean())
