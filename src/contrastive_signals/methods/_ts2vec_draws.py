"""The random draws of TS2Vec's reference training loop, from explicit generators.

The authors' code (Yue et al. 2022, github.com/yuezhihan/ts2vec) seeds python, numpy and torch
once and then draws from the global generators: torch for the initial weights, for
``DataLoader(shuffle=True)`` and for dropout; numpy for the random crops and the timestamp
masks. Their ``init_dl_program(seed)`` seeds python with ``seed``, numpy with ``seed + 1`` and
torch with ``seed + 2``. :class:`Ts2VecDraws` holds the same two streams as objects, so that our
training with the same seed makes the same draws in the same order (the same run, up to
floating-point summation order), while this package touches no global random state.

Private to :mod:`contrastive_signals.methods.ts2vec`, the only code that draws from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

NUMPY_SEED_OFFSET = 1  # init_dl_program: np.random.seed(seed + 1)
TORCH_SEED_OFFSET = 2  # init_dl_program: torch.manual_seed(seed + 2)


def ts2vec_torch_seed(seed: int) -> int:
    """The seed of torch's generator in the authors' run with ``seed``: the weights come first
    from it."""
    return seed + TORCH_SEED_OFFSET


@dataclass
class Ts2VecDraws:
    """``numpy``: the stream of crops and timestamp masks (numpy's legacy ``RandomState``, which
    ``np.random.seed`` seeds); ``torch``: the stream of shuffling and dropout, continuing from
    the state the weight initialisation left."""

    numpy: np.random.RandomState
    torch: torch.Generator

    @classmethod
    def after_weights(cls, seed: int, torch_state: Tensor) -> Ts2VecDraws:
        """The streams of the authors' run with ``seed`` once the weights were drawn from
        :func:`ts2vec_torch_seed`, leaving torch's generator in ``torch_state`` (see
        ``models.registry.build_model_with_rng_state``)."""
        generator = torch.Generator()
        generator.set_state(torch_state)
        return cls(numpy=np.random.RandomState(seed + NUMPY_SEED_OFFSET), torch=generator)

    def state_dict(self) -> dict[str, Tensor | int | float]:
        """Both streams' positions as tensors and numbers (for a checkpoint)."""
        _, keys, position, has_gauss, gauss = self.numpy.get_state()
        return {"numpy_keys": torch.from_numpy(keys.astype(np.int64)),
                "numpy_position": int(position), "numpy_has_gauss": int(has_gauss),
                "numpy_gauss": float(gauss), "torch": self.torch.get_state()}

    def load_state_dict(self, state: dict[str, Tensor | int | float]) -> None:
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        self.numpy.set_state(("MT19937", keys, state["numpy_position"],
                              state["numpy_has_gauss"], state["numpy_gauss"]))
        self.torch.set_state(state["torch"])

    def epoch_order(self, n: int) -> Tensor:
        """The order ``[n]`` in which ``DataLoader(shuffle=True)`` visits ``n`` items in one
        epoch: its iterator draws a base seed for workers (unused here, drawn to stay in step),
        then its sampler draws the seed of a private generator that permutes the items."""
        torch.empty((), dtype=torch.int64).random_(generator=self.torch)
        seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.torch))
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def timestamp_keep(self, batch: int, length: int, keep_p: float = 0.5) -> Tensor:
        """TS2Vec's ``generate_binomial_mask``: ``[batch, length]`` booleans, True = kept,
        each with probability ``keep_p``."""
        return torch.from_numpy(self.numpy.binomial(1, keep_p, size=(batch, length))).bool()
