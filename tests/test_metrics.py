"""Top-k accuracy, checked against hand computations and a sort-based oracle; ties count against
the model."""

import pytest
import torch

from ftlib.metrics import TopkCounts, topk_accuracy, topk_correct


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


def test_topk_agrees_with_an_argsort_oracle_without_ties():
    torch.manual_seed(0)
    logits, targets = torch.randn(200, 10), torch.randint(0, 10, (200,))
    ranking = logits.argsort(dim=1, descending=True)
    for k in (1, 3, 5):
        expected = (ranking[:, :k] == targets[:, None]).any(dim=1).float().mean().item()
        assert topk_accuracy(logits, targets, ks=(k,))[k] == pytest.approx(expected)


def test_equal_scores_for_every_class_earn_nothing_until_k_covers_every_class():
    # torch.topk would credit 1/C of these samples at top-1: whichever class it happens to pick.
    logits, targets = torch.zeros(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    assert topk_accuracy(logits, targets, ks=(1, 3, 4, 9)) == {1: 0.0, 3: 0.0, 4: 1.0, 9: 1.0}


def test_a_true_class_tied_with_the_kth_score_is_a_miss_and_strictly_inside_is_a_hit():
    logits = torch.tensor(
        [
            [3.0, 2.0, 2.0, 0.0],  # true class 1 ties class 2 for second place
            [3.0, 2.0, 2.0, 0.0],  # true class 0 is first, above the tie
            [3.0, 3.0, 1.0, 0.0],  # true class 0 ties class 1 for first place
            [3.0, 3.0, 1.0, 0.0],  # true class 2 is third, strictly below the tie
        ]
    )
    targets = torch.tensor([1, 0, 0, 2])
    counts = topk_correct(logits, targets, ks=(1, 2, 3))
    assert {k: int(count) for k, count in counts.items()} == {1: 1, 2: 2, 3: 4}


def test_nan_scores_count_against_the_model():
    logits = torch.tensor([[float("nan"), 1.0, 0.0], [2.0, float("nan"), 0.0], [2.0, 1.0, 0.0]])
    targets = torch.tensor([0, 0, 0])  # NaN true score; NaN rival; a clean hit
    assert topk_accuracy(logits, targets, ks=(1, 2, 3)) == {1: 1 / 3, 2: 2 / 3, 3: 1.0}


def test_half_precision_ties_count_as_misses_too():
    # 1.0 and 1.0001 are distinct in float32 and the same number in bfloat16.
    logits = torch.tensor([[1.0001, 1.0, 0.0]])
    targets = torch.tensor([0])
    assert topk_accuracy(logits, targets, ks=(1,)) == {1: 1.0}
    assert topk_accuracy(logits.bfloat16(), targets, ks=(1,)) == {1: 0.0}


def test_topk_correct_counts_add_up_across_batches():
    torch.manual_seed(1)
    logits, targets = torch.randn(50, 4), torch.randint(0, 4, (50,))
    whole = topk_correct(logits, targets, ks=(1, 2))
    parts = [
        topk_correct(logits[i : i + 7], targets[i : i + 7], ks=(1, 2)) for i in range(0, 50, 7)
    ]
    for k in (1, 2):
        assert sum(part[k] for part in parts) == whole[k]


def test_topk_correct_counts_targets_outside_the_classes_as_misses_without_a_sync():
    logits, targets = torch.tensor([[2.0, 1.0], [2.0, 1.0]]), torch.tensor([0, 5])
    counts = topk_correct(logits, targets, ks=(1, 2))
    assert {k: int(count) for k, count in counts.items()} == {1: 1, 2: 1}


def test_topk_correct_accepts_int32_targets():
    logits = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    counts = topk_correct(logits, torch.tensor([1, 1], dtype=torch.int32), ks=(1,))
    assert int(counts[1]) == 1


def test_the_loops_running_counts_equal_topk_correct_with_ties_and_nan_over_batches():
    torch.manual_seed(2)
    logits = torch.randint(0, 3, (60, 4)).float()  # few distinct scores: many ties
    logits[::7, 1] = float("nan")
    targets = torch.randint(0, 4, (60,))
    ks = (1, 2, 4, 9)
    running = TopkCounts(ks, torch.device("cpu"))
    for i in range(0, 60, 8):
        running.add(logits[i : i + 8], targets[i : i + 8])
    expected = topk_correct(logits, targets, ks)
    assert {k: int(n) for k, n in running.counts().items()} == {
        k: int(n) for k, n in expected.items()
    }


def test_running_counts_start_at_zero_and_refuse_what_topk_correct_refuses():
    assert {k: int(n) for k, n in TopkCounts((1, 5), torch.device("cpu")).counts().items()} == {
        1: 0,
        5: 0,
    }
    with pytest.raises(ValueError, match="k must be at least 1"):
        TopkCounts((0, 1), torch.device("cpu"))
    with pytest.raises(ValueError, match="shape"):
        TopkCounts((1,), torch.device("cpu")).add(
            torch.zeros(3, 2), torch.zeros(4, dtype=torch.long)
        )


@pytest.mark.parametrize(
    ("logits", "targets", "ks", "message"),
    [
        (torch.randn(4), torch.zeros(4, dtype=torch.long), (1,), "shape \\(N, C\\)"),
        (torch.randn(4, 3), torch.zeros(5, dtype=torch.long), (1,), "targets must be"),
        (torch.randn(0, 3), torch.zeros(0, dtype=torch.long), (1,), "empty batch"),
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), (0, 1), "at least 1"),
        (torch.randn(4, 3), torch.zeros(4), (1,), "integer class indices.*argmax"),
        (torch.randn(2, 3), torch.tensor([0, 3]), (1,), "in 0..2 .* got 3"),
        (torch.randn(2, 3), torch.tensor([-1, 0]), (1,), "in 0..2 .* got -1"),
    ],
)
def test_topk_rejects_bad_inputs_with_a_clear_message(logits, targets, ks, message):
    with pytest.raises(ValueError, match=message):
        topk_accuracy(logits, targets, ks=ks)
