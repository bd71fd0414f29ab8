"""Test inputs shared by the loss and miner tests."""

import torch


def clustered_batch(n: int, d: int, n_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float64 embeddings ``[n, d]`` around ``n_classes`` random centres, and their labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    centres = torch.randn(n_classes, d, generator=g, dtype=torch.float64)
    return centres[labels] + torch.randn(n, d, generator=g, dtype=torch.float64), labels
