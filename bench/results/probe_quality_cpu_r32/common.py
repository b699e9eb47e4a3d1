import sys, time, numpy as np, torch
sys.path.insert(0, "/work/wt-ml")
from labeling.ml.probe import fit_probe
from labeling.ml.metrics import evaluate
from labeling.ml.embed import embed_images
D = np.load("/tmp/exp/scenes.npz")
Y = D["labels"]
def split(r, labeled=200, test=500, pool=1500):
    X = D[f"x{r}"]
    return (X[:labeled], Y[:labeled]), (X[labeled:labeled+test], Y[labeled:labeled+test]), X[labeled+test:labeled+test+pool]
def probe_feats(ftr, ytr, fte, yte):
    p = fit_probe(ftr, ytr)
    return evaluate(yte, p.predict_proba(fte), p.thresholds).map
def probe_backbone(bb, tr, te):
    return probe_feats(embed_images(bb, tr[0]), tr[1], embed_images(bb, te[0]), te[1])
