"""The annotation domain: projects, labels, images, annotations, the queue, reviews, imports and
exports. It never imports ``labeling``; model assistance plugs in through ``annotator.extensions``."""
