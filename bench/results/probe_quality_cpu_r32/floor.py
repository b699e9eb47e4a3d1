from common import *
from labeling.ml.backbone import resnet18_backbone
for r in (32, 64):
    tr, te, _ = split(r)
    # raw pixels (downsampled to 16px) as a sanity feature
    def px(x): return torch.nn.functional.avg_pool2d(torch.from_numpy(x).permute(0,3,1,2).float(), r//8).flatten(1).numpy()
    print(r, "pixels8", round(probe_feats(px(tr[0]), tr[1], px(te[0]), te[1]), 3))
    for small in (False, True):
        torch.manual_seed(0)
        bb = resnet18_backbone(small_stem=small)
        f = embed_images(bb, tr[0])
        print(r, "small" if small else "std", "random eval", round(probe_backbone(bb, tr, te), 3), "feat std", float(f.astype(np.float32).std()), "nonconst", int((f.std(0)>0).sum()))
        # train-mode BN (batch stats) floor
        torch.manual_seed(0)
        bb2 = resnet18_backbone(small_stem=small)
        bb2.train()
        with torch.no_grad():
            from labeling.ml.augment import normalize, to_float
            bb2(normalize(to_float(torch.from_numpy(D[f"x{r}"][700:1700])))); 
        # after one pass in train mode with momentum 0.1 stats partially; set momentum None for cumulative
        for m in bb2.modules():
            if isinstance(m, torch.nn.BatchNorm2d): m.reset_running_stats(); m.momentum=None
        with torch.no_grad():
            for i in range(700, 1700, 250):
                bb2(normalize(to_float(torch.from_numpy(D[f"x{r}"][i:i+250]))))
        print(r, "small" if small else "std", "random, BN stats calibrated", round(probe_backbone(bb2, tr, te), 3))
        # non-zero-init residual
        import torchvision
        torch.manual_seed(0)
        net = torchvision.models.resnet18(weights=None); net.fc = torch.nn.Identity()
        if small:
            net.conv1 = torch.nn.Conv2d(3,64,3,1,1,bias=False); net.maxpool=torch.nn.Identity()
        print(r, "small" if small else "std", "random no-zero-init", round(probe_backbone(net, tr, te), 3))
