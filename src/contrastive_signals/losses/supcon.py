"""Supervised contrastive loss, L^sup_out of Khosla et al. 2020."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .ntxent import _check_temperature


def supervised_contrastive_loss(
    embeddings: Tensor, labels: Tensor, *, temperature: float
) -> Tensor:
    """Khosla et al.'s ``L^sup_out``: the 1/|P(i)| average sits outside the log.

    For anchor ``i`` with positives ``P(i)`` (other rows with the same label) and
    ``A(i)`` (all rows but ``i``)::

        l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(s_ip/t) / sum_{a in A(i)} exp(s_ia/t) )

    with ``s`` the cosine similarity. The loss is the mean of ``l_i`` over anchors that
    have at least one positive; the two views of one image are two rows sharing a label.

    Args:
        embeddings: ``[N, D]``, L2-normalised here.
        labels: ``[N]`` integer class labels.
        temperature: softmax temperature, ``> 0``.

    Returns:
        Scalar tensor; a graph-connected zero when no anchor has a positive.
    """
    _check_temperature(temperature)
    if embeddings.ndim != 2 or labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            "embeddings must be [N, D] and labels [N]; got "
            f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    z = F.normalize(embeddings, dim=1)
    # -inf on the diagonal keeps an anchor out of its own denominator A(i).
    logits = ((z @ z.T) / temperature).fill_diagonal_(float("-inf"))  # [N, N]
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos_mask = (labels[:, None] == labels[None, :]).fill_diagonal_(False)
    n_pos = pos_mask.sum(dim=1)
    # where() rather than a product: the diagonal of log_prob is -inf and -inf * 0 = nan.
    sum_log_prob_pos = torch.where(pos_mask, log_prob, 0.0).sum(dim=1)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        return embeddings.sum() * 0.0
    return -(sum_log_prob_pos[has_pos] / n_pos[has_pos]).mean()
