"""Contrastive and metric-learning losses; miners return index triplets for any loss."""

from .hinge import multiclass_hinge_loss
from .miners import (
    METRICS,
    all_triplets,
    batch_hard_triplets,
    pairwise_distances,
    semi_hard_triplets,
)
from .ntxent import nt_xent_loss
from .pair_contrastive import pair_contrastive_loss
from .supcon import supervised_contrastive_loss
from .triplet import MINERS, mined_triplet_loss, triplet_margin_loss

__all__ = [
    "METRICS",
    "MINERS",
    "all_triplets",
    "batch_hard_triplets",
    "mined_triplet_loss",
    "multiclass_hinge_loss",
    "nt_xent_loss",
    "pair_contrastive_loss",
    "pairwise_distances",
    "semi_hard_triplets",
    "supervised_contrastive_loss",
    "triplet_margin_loss",
]
