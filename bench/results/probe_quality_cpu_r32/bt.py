import argparse, json
from common import *
from labeling.ml.backbone import ModelConfig
from labeling.ml.train import PretrainConfig, Runtime, pretrain
p = argparse.ArgumentParser()
p.add_argument("--res", type=int, default=32); p.add_argument("--small", type=int, default=0)
p.add_argument("--batch", type=int, default=128); p.add_argument("--epochs", type=int, default=20)
p.add_argument("--proj", default="512-512-512"); p.add_argument("--lr", type=float, default=0.2)
p.add_argument("--warmup", type=int, default=2); p.add_argument("--pool", type=int, default=1500)
p.add_argument("--probe-at", default="");p.add_argument("--lambd", type=float, default=0.0051); p.add_argument("--evals", default="")
a = p.parse_args()
tr, te, pool = split(a.res, pool=a.pool)
X = np.concatenate([pool, tr[0]])
cfg = PretrainConfig(model=ModelConfig(resolution=a.res, small_stem=bool(a.small), projector=tuple(int(d) for d in a.proj.split("-")), lambd=a.lambd),
                     epochs=a.epochs, batch_size=a.batch, warmup_epochs=a.warmup, lr_weights=a.lr, seed=0)
import labeling.ml.train as T
_bm = T.build_model; holder = {}
def _capture(c):
    holder["m"] = _bm(c); return holder["m"]
T.build_model = _capture
probe_at = {int(e) for e in a.probe_at.split(",") if e}
t0 = time.time(); ep = {}
def prog(pr):
    if pr.step % pr.steps_per_epoch == 0:
        print(f"epoch {pr.epoch} loss {pr.loss:.1f} {pr.images_per_s:.0f} img/s t={time.time()-t0:.0f}", flush=True)
        if pr.epoch + 1 in probe_at:
            tp = time.time(); mm = probe_backbone(holder["m"].backbone, tr, te)
            print(f"  probe after {pr.epoch+1} epochs: mAP {mm:.4f} ({time.time()-tp:.0f} s)", flush=True)
run = pretrain(cfg, X, Runtime(log_every=10**6, on_progress=prog))
bt_s = time.time() - t0
m = probe_backbone(run.model.backbone, tr, te)
h = run.loss_history; spe = len(X)//min(a.batch, len(X))
curve = [round(float(np.mean(h[i*spe:(i+1)*spe])), 1) for i in range(a.epochs)]
print(json.dumps({"args": vars(a), "map": round(m, 4), "bt_s": round(bt_s), "loss_per_epoch": curve}), flush=True)
