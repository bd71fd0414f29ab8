"""CTC over full-length outputs: the same as torch's CTC with every input length = T, for
padded and for concatenated targets."""

import torch
import torch.nn.functional as F

from contrastive_signals.losses.ctc import full_length_ctc_loss


def test_matches_torch_ctc_for_padded_and_concatenated_targets():
    generator = torch.Generator().manual_seed(0)
    log_probs = torch.randn(12, 3, 5, generator=generator).log_softmax(-1)
    padded = torch.tensor([[1, 2, 3], [4, 0, 0], [2, 1, 0]])
    lengths = torch.tensor([3, 1, 2])
    expected = F.ctc_loss(log_probs, padded, torch.full((3,), 12), lengths, blank=0,
                          zero_infinity=True)
    assert torch.equal(full_length_ctc_loss(log_probs, padded, lengths), expected)
    concatenated = torch.tensor([1, 2, 3, 4, 2, 1])
    torch.testing.assert_close(full_length_ctc_loss(log_probs, concatenated, lengths), expected)


def test_impossible_alignments_count_zero():
    log_probs = torch.zeros(2, 1, 3).log_softmax(-1)       # 2 frames for 3 distinct labels
    loss = full_length_ctc_loss(log_probs, torch.tensor([[1, 2, 1]]), torch.tensor([3]))
    assert loss.item() == 0.0
