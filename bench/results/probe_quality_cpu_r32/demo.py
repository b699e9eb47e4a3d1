"""The demo's first run: 300 images, 120 labeled; time the pretraining and probe the result."""
import sys, json
from common import *
from labeling.ml.backbone import ModelConfig
from labeling.ml.train import PretrainConfig, Runtime, pretrain, build_model
small = {"auto": None, "small": True, "std": False}[sys.argv[1]]; epochs = int(sys.argv[2]); batch = int(sys.argv[3])
res = int(sys.argv[4]) if len(sys.argv) > 4 else 32
X, Yd = D[f"x{res}"][700:1000], Y[700:1000]
te = (D[f"x{res}"][200:700], Y[200:700])
cfg = PretrainConfig(model=ModelConfig(resolution=res, small_stem=small, projector=(512, 512, 512)), epochs=epochs,
                     batch_size=batch, warmup_epochs=2, lr_weights=0.2, seed=0)
t = time.time(); run = pretrain(cfg, X); s = time.time() - t
tp = time.time(); m = probe_backbone(run.model.backbone, (X[:120], Yd[:120]), te); ps = time.time() - tp
mr = probe_backbone(build_model(cfg).backbone, (X[:120], Yd[:120]), te)
print(json.dumps({"stem": sys.argv[1], "uses_small": cfg.model.uses_small_stem, "res": res, "epochs": epochs, "batch": batch,
      "pretrain_s": round(s, 1), "embed_probe_s": round(ps, 1), "map_bt": round(m, 3), "map_random": round(mr, 3),
      "chance": round(float(te[1].mean()), 3), "loss_first_last": [round(run.loss_history[0], 1), round(run.loss_history[-1], 1)]}), flush=True)
