"""Model-assisted labeling: self-supervised pretraining, the linear probe and suggestions.

``labeling.ml`` is pure PyTorch and never imports Django; the rest of this app is the glue
that runs it from Celery workers and stores what it produces.
"""
