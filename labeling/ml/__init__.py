"""Model-assisted labeling in pure PyTorch: no Django here, ever.

cache     decode each image once into a fixed-resolution uint8 store
augment   Barlow Twins views, batched on the training device
backbone  ResNet-18 + projector;  barlow  the loss;  lars  optimiser + schedule
train     pretraining with checkpoints, resume, progress and cancellation
distributed  several processes (GPUs) on one host: global batch statistics, DDP launch
embed     frozen features per image id
probe     the multilabel linear probe, and its file (save_probe / load_probe)
metrics   AP / mAP / F1 in one pass;  active  uncertainty for labeling order
calibrate  Platt scaling, ECE;  confidence  precision-targeted thresholds
presets   per-device pretraining presets and the estimate before a run starts (no torch)
propagate  label propagation over the kNN graph
projection  a 2-D map of the embeddings (PCA) for the dashboard
tracking  TensorBoard scalars and a profiler trace of a few steps

Import from the submodule (``from labeling.ml.probe import fit_probe``). This package file
imports nothing, so ``import labeling.ml`` stays cheap: a web process that reads the presets
does not pay for importing torch.
"""
