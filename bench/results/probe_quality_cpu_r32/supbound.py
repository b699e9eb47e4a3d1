"""Upper bound: ResNet-18 trained supervised on MANY labeled scenes; test mAP of its head."""
import sys
from common import *
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))  # the repository
from bench.probe_quality import train_supervised
from labeling.ml.backbone import ModelConfig
from labeling.ml.augment import normalize, to_float
r, n, ep, small = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "small"
X = D[f"x{r}"]
tr = (X[700:700 + n], Y[700:700 + n]); te = (X[200:700], Y[200:700])
t = time.time()
bb, head = train_supervised(ModelConfig(resolution=r, small_stem=small), tr, ep, 64, 2e-3, "cpu")
with torch.inference_mode():
    logits = torch.cat([head(bb(normalize(to_float(torch.from_numpy(te[0][i:i+250]))))) for i in range(0, 500, 250)])
hm = evaluate(te[1], torch.sigmoid(logits).numpy(), np.full(6, 0.5))
print(f"res {r} stem {'small' if small else 'std'} n={n} epochs={ep}: head mAP {hm.map:.3f} AP {[round(a,2) for a in hm.ap]} ({time.time()-t:.0f} s)", flush=True)
