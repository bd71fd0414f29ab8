"""Leave-one-out Recall@K and mAP against hand-worked values and scikit-learn."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from contrastive_signals.metrics.retrieval import retrieval_metrics

# Four points on a line, labels [0, 0, 1, 1], Euclidean distance:
#   x = 0    -> ranking 1 (d 1), 2 (d 2.5), 3 (d 6)    relevant [1, 0, 0]  R@1 hit, AP 1
#   x = 1    -> ranking 0 (d 1), 2 (d 1.5), 3 (d 5)    relevant [1, 0, 0]  R@1 hit, AP 1
#   x = 2.5  -> ranking 1 (d 1.5), 0 (d 2.5), 3 (d 3.5) relevant [0, 0, 1] R@1/R@2 miss,
#                                                                            AP = 1/3
#   x = 6    -> ranking 2 (d 3.5), 1 (d 5), 0 (d 6)    relevant [1, 0, 0]  R@1 hit, AP 1
# Recall@1 = Recall@2 = 3/4, Recall@3 = 1, mAP = (1 + 1 + 1/3 + 1) / 4 = 5/6.
LINE = np.array([[0.0], [1.0], [2.5], [6.0]])
LINE_LABELS = np.array([0, 0, 1, 1])
LINE_EXPECTED = {"recall_at_1": 0.75, "recall_at_2": 0.75, "recall_at_3": 1.0, "map": 5 / 6}


def test_line_by_hand():
    result = retrieval_metrics(LINE, LINE_LABELS, ks=(1, 2, 3), metric="euclidean")
    assert result == pytest.approx(LINE_EXPECTED)


def test_cosine_by_hand_ignores_norms():
    # Angles 0, 20, 50, 120 degrees keep the same neighbour order as the line above
    # (gaps 20, 30, 70); the lengths differ to show that cosine ignores them.
    angles = np.deg2rad([0.0, 20.0, 50.0, 120.0])
    points = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([[1], [5], [0.2], [3]])
    result = retrieval_metrics(torch.tensor(points), LINE_LABELS, ks=(1, 2, 3))
    assert result == pytest.approx(LINE_EXPECTED)


def reference(embeddings: np.ndarray, labels: np.ndarray, ks, metric: str) -> dict:
    """Slow per-query loop: sklearn AP over the other N-1 items, Recall@K from a full sort."""
    n = len(labels)
    if metric == "cosine":
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        similarity = unit @ unit.T
    else:
        similarity = -np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    aps, hits = [], {k: [] for k in ks}
    for q in range(n):
        others = np.delete(np.arange(n), q)
        relevant = labels[others] == labels[q]
        if not relevant.any():
            continue
        aps.append(average_precision_score(relevant, similarity[q, others]))
        ranked = relevant[np.argsort(-similarity[q, others], kind="stable")]
        for k in ks:
            hits[k].append(ranked[:k].any())
    out = {f"recall_at_{k}": float(np.mean(hits[k])) for k in ks}
    out["map"] = float(np.mean(aps))
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("chunk_size", [1024, 7])
def test_matches_sklearn_average_precision(metric, chunk_size):
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((60, 8))
    labels = rng.integers(0, 5, size=60)
    result = retrieval_metrics(
        torch.from_numpy(embeddings), torch.from_numpy(labels), ks=(1, 5, 10), metric=metric,
        chunk_size=chunk_size,
    )
    assert result == pytest.approx(reference(embeddings, labels, (1, 5, 10), metric), abs=1e-10)


def test_float32_numpy_input_and_default_keys():
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((20, 4)).astype(np.float32)
    labels = np.repeat(np.arange(4), 5)
    result = retrieval_metrics(embeddings, labels)
    assert list(result) == ["recall_at_1", "recall_at_5", "map"]
    assert result == pytest.approx(reference(embeddings.astype(float), labels, (1, 5), "cosine"),
                                   abs=1e-6)


def test_queries_with_unique_labels_are_left_out():
    # Item 2 is alone in its class: it has nothing to retrieve and must not count as a miss.
    result = retrieval_metrics(np.array([[0.0], [1.0], [5.0]]), np.array([0, 0, 1]), ks=(1,),
                               metric="euclidean")
    assert result == {"recall_at_1": 1.0, "map": 1.0}


@pytest.mark.parametrize(
    ("embeddings", "labels", "kwargs", "match"),
    [
        (np.zeros((4, 2)), np.zeros(3), {}, "same N"),
        (LINE, LINE_LABELS, {}, r"every k must be in \[1, 3\]"),  # default ks has k = 5 > 3
        (LINE, LINE_LABELS, {"ks": (1,), "metric": "dot"}, "metric must be one of"),
        (np.array([[np.nan], [0.0]]), np.array([0, 0]), {"ks": (1,)}, "NaN"),
    ],
)
def test_bad_inputs_raise(embeddings, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(embeddings, labels, **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(300, 16, generator=generator)
    labels = torch.randint(0, 10, (300,), generator=generator)
    cpu = retrieval_metrics(embeddings, labels, chunk_size=64)
    cuda = retrieval_metrics(embeddings.cuda(), labels.cuda(), chunk_size=64)
    assert cuda == pytest.approx(cpu, abs=1e-5)
