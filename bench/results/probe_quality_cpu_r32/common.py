import os, sys, tempfile, time, numpy as np, torch
# data.py writes the rendered scenes here, the others read them: $SCENES, else the temp folder
SCENES = os.environ.get("SCENES", os.path.join(tempfile.gettempdir(), "exp", "scenes.npz"))
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))  # the repository
from labeling.ml.probe import fit_probe
from labeling.ml.metrics import evaluate
from labeling.ml.embed import embed_images
D = np.load(SCENES)
Y = D["labels"]
def split(r, labeled=200, test=500, pool=1500):
    X = D[f"x{r}"]
    return (X[:labeled], Y[:labeled]), (X[labeled:labeled+test], Y[labeled:labeled+test]), X[labeled+test:labeled+test+pool]
def probe_feats(ftr, ytr, fte, yte):
    p = fit_probe(ftr, ytr)
    return evaluate(yte, p.predict_proba(fte), p.thresholds).map
def probe_backbone(bb, tr, te):
    return probe_feats(embed_images(bb, tr[0]), tr[1], embed_images(bb, te[0]), te[1])
