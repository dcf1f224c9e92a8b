"""Top-k accuracy, checked against hand computations and a sort-based oracle."""

import pytest
import torch

from ftlib.metrics import topk_accuracy, topk_correct


def test_topk_accuracy_matches_a_hand_computation():
    logits = torch.tensor(
        [
            [0.1, 0.7, 0.2],  # ranks: 1, 2, 0
            [0.5, 0.3, 0.2],  # ranks: 0, 1, 2
            [0.2, 0.3, 0.5],  # ranks: 2, 1, 0
            [0.6, 0.1, 0.3],  # ranks: 0, 2, 1
        ]
    )
    targets = torch.tensor([1, 1, 0, 1])
    # top-1 hits: sample 0 only; top-2 adds sample 1; top-3 hits everything.
    assert topk_accuracy(logits, targets, ks=(1, 2, 3)) == {1: 0.25, 2: 0.5, 3: 1.0}


def test_k_larger_than_the_number_of_classes_is_clamped_and_keyed_as_asked():
    logits = torch.randn(6, 3)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    assert topk_accuracy(logits, targets, ks=(5,)) == {5: 1.0}


def test_topk_agrees_with_an_argsort_oracle():
    torch.manual_seed(0)
    logits, targets = torch.randn(200, 10), torch.randint(0, 10, (200,))
    ranking = logits.argsort(dim=1, descending=True)
    for k in (1, 3, 5):
        expected = (ranking[:, :k] == targets[:, None]).any(dim=1).float().mean().item()
        assert topk_accuracy(logits, targets, ks=(k,))[k] == pytest.approx(expected)


def test_topk_correct_counts_add_up_across_batches():
    torch.manual_seed(1)
    logits, targets = torch.randn(50, 4), torch.randint(0, 4, (50,))
    whole = topk_correct(logits, targets, ks=(1, 2))
    parts = [
        topk_correct(logits[i : i + 7], targets[i : i + 7], ks=(1, 2)) for i in range(0, 50, 7)
    ]
    for k in (1, 2):
        assert sum(part[k] for part in parts) == whole[k]


@pytest.mark.parametrize(
    ("logits", "targets", "ks", "message"),
    [
        (torch.randn(4), torch.zeros(4, dtype=torch.long), (1,), "shape \\(N, C\\)"),
        (torch.randn(4, 3), torch.zeros(5, dtype=torch.long), (1,), "targets must be"),
        (torch.randn(0, 3), torch.zeros(0, dtype=torch.long), (1,), "empty batch"),
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), (0, 1), "at least 1"),
    ],
)
def test_topk_rejects_bad_inputs_with_a_clear_message(logits, targets, ks, message):
    with pytest.raises(ValueError, match=message):
        topk_accuracy(logits, targets, ks=ks)
