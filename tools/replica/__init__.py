"""PyTorch replica of virtex's pretraining (see tools/recipe_replica.py).

Modules: model (backbones and textual heads by virtex's names), data (captions and images from
virtex's tokenize and augment artifacts, train transform, batches), train (optimizer groups,
LookAhead, schedule, loop), recipe (virtex pipeline files resolved by virtex itself).
"""
