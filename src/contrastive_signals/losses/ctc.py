"""CTC on outputs that span every frame of the input (no padding of the inputs)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def full_length_ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor,
                         target_lengths: torch.Tensor, *, blank: int = 0) -> torch.Tensor:
    """Mean CTC loss (``reduction="mean"``: per target divided by its length, then averaged;
    infinite losses zeroed) of log-probabilities ``[T, B, K + 1]`` whose T frames are all
    valid for every row.

    Args:
        targets: padded ``[B, S]`` or concatenated ``[sum(target_lengths)]`` label indices.
        target_lengths: ``[B]``.
    """
    input_lengths = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long,
                               device=log_probs.device)
    return F.ctc_loss(log_probs.float(), targets, input_lengths, target_lengths, blank=blank,
                      zero_infinity=True)
