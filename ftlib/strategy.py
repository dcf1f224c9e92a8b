"""Where to start fine-tuning: the four quadrants of dataset size and similarity.

Two questions pick the starting strategy: is the new dataset small (fewer than
``SMALL_DATASET_THRESHOLD`` = 1000 images per class, a common rule of thumb), and does it look
like the data the model was pretrained on (cats and dogs vs ImageNet: similar; cancer cells vs
ImageNet: different; common sense decides)?

===============  =============================================  ==================================
                 similar                                        different
===============  =============================================  ==================================
small            HEAD: a new classifier on frozen features      FULL with the first k (early,
                 (too few images to move the body without       general) blocks frozen: retrain
                 overfitting; the features already fit)         the later, task-specific ones
large            FULL: fine-tune everything at a small body     FULL from the pretrained weights;
                 learning rate (10x below from scratch, the     alternative: train from scratch
                 head 10x the body)                             (the sources disagree, see below)
===============  =============================================  ==================================

The large + different quadrant is disputed. Some widely read tutorials say the
pretrained weights will not help there and the network should be trained from scratch. CS231n
says one may train from scratch but that initialising from pretrained weights is still often
beneficial, and Kornblith et al. (2019, "Do Better ImageNet Models Transfer Better?") and He,
Girshick & Dollár (2019, "Rethinking ImageNet Pre-training") find that fine-tuning everything from
pretrained weights is usually at least as accurate as training from scratch and converges much
faster; from scratch only catches up with a long enough schedule. ``recommend`` therefore starts
from the pretrained weights and names training from scratch as the alternative; lesson 6
measures both.

Some texts number the quadrants 1 (large, different), 2 (large, similar), 3 (small,
different) and 4 (small, similar); the names here say what each number means.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from ftlib._choice import Choice
from ftlib.surgery.states import State
from ftlib.training.optim import HEAD_LR_MULT

SMALL_DATASET_THRESHOLD = 1000
"""Images per class; a dataset with fewer per class is small."""

PARTIAL_FREEZE_FRACTION = 0.4
"""Small + different: freeze about this fraction of the top-level blocks (a third to a half).
Yosinski et al. (2014) lost little accuracy freezing the first 3 of 8 layers and more beyond."""

FINE_TUNE_LR_DIVISOR = 10
"""Pretrained weights are fine-tuned at about a tenth of the learning rate used from scratch."""


class Quadrant(Choice):
    """A dataset's place in the size x similarity matrix."""

    SMALL_SIMILAR = "small_similar"
    SMALL_DIFFERENT = "small_different"
    LARGE_SIMILAR = "large_similar"
    LARGE_DIFFERENT = "large_different"

    @classmethod
    def of(cls, images_per_class: int, similar: bool) -> Quadrant:
        """The quadrant of a dataset with ``images_per_class`` images per class.

        Args:
            images_per_class: labelled images per class (the smallest class, if they differ);
                fewer than ``SMALL_DATASET_THRESHOLD`` is small.
            similar: whether the images resemble the pretraining data.

        Raises:
            ValueError: ``images_per_class`` is not an int >= 1, or ``similar`` is not a bool.
        """
        if isinstance(images_per_class, bool) or not isinstance(images_per_class, Integral):
            raise ValueError(
                f"images_per_class must be a whole number of images, got {images_per_class!r}"
            )
        if images_per_class < 1:
            raise ValueError(
                f"images_per_class must be at least 1, got {images_per_class}; fine-tuning "
                "needs labelled images of every class"
            )
        if not isinstance(similar, bool):
            raise ValueError(
                f"similar must be True or False, got {similar!r}: does the new data look like "
                "the data the model was pretrained on?"
            )
        size = "small" if images_per_class < SMALL_DATASET_THRESHOLD else "large"
        return cls(f"{size}_{'similar' if similar else 'different'}")


@dataclass(frozen=True)
class Plan:
    """A starting strategy: what to train, what to freeze, how fast, and why.

    Attributes:
        quadrant: where the dataset sits.
        state: the ``ftlib.surgery.states.State`` to ``prepare`` the model in.
        freeze_first: top-level blocks to keep frozen in state FULL (``prepare(...,
            freeze_first=...)``); 0 in state HEAD, which freezes the whole body anyway; None
            means "choose k by a sweep on validation data".
        alternative: a strategy worth measuring against this one, or None.
        lr_advice: learning rates to start from.
        reason: one paragraph on why.
    """

    quadrant: Quadrant
    state: State
    freeze_first: int | None
    alternative: str | None
    lr_advice: str
    reason: str


_FINE_TUNE_LR = (
    f"fine-tune the body at about 1/{FINE_TUNE_LR_DIVISOR} of the learning rate you would use "
    f"from scratch and the new head at {HEAD_LR_MULT:g}x the body's "
    "(ftlib.param_groups)"
)


def recommend(images_per_class: int, similar: bool, *, num_blocks: int | None = None) -> Plan:
    """Recommend where to start fine-tuning, from dataset size and similarity.

    Why: the four quadrants turn two questions about the data into a first experiment; the
    ``reason`` says what each choice rests on, so it can be questioned and measured.

    Args:
        images_per_class: labelled images per class (fewer than 1000: small).
        similar: whether the new images resemble the pretraining data.
        num_blocks: the model's number of top-level blocks, head included
            (``len(ftlib.top_level_blocks(model))``). Only used for small + different,
            to pick how many to freeze: about 40%, leaving at least one body block to train.
            None, or a model whose body is a single block (VGG's ``features``), leaves the
            choice to a sweep (``freeze_first=None``).

    Returns:
        A ``Plan``.

    Raises:
        ValueError: ``images_per_class`` is not an int >= 1, ``similar`` is not a bool, or
            ``num_blocks`` is not an int >= 1.
    """
    quadrant = Quadrant.of(images_per_class, similar)
    if num_blocks is not None and (
        isinstance(num_blocks, bool) or not isinstance(num_blocks, Integral) or num_blocks < 1
    ):
        raise ValueError(f"num_blocks must be an int >= 1 or None, got {num_blocks!r}")
    size = f"{images_per_class} images per class"

    if quadrant is Quadrant.SMALL_SIMILAR:
        return Plan(
            quadrant=quadrant,
            state=State.HEAD,
            freeze_first=0,
            alternative=None,
            lr_advice=(
                "train the new head at an ordinary from-scratch learning rate (e.g. 1e-3 with "
                "AdamW); the frozen body has no learning rate"
            ),
            reason=(
                f"With {size} (fewer than {SMALL_DATASET_THRESHOLD}) there is too little data "
                "to adjust millions of pretrained weights without overfitting, and because the "
                "images resemble the pretraining data the frozen features already separate the "
                "new classes. Replace the classifier and train only the new one on the frozen "
                "features (state 2: feature extraction, linear probing)."
            ),
        )
    if quadrant is Quadrant.SMALL_DIFFERENT:
        freeze_first, how_many = _partial_freeze(num_blocks)
        return Plan(
            quadrant=quadrant,
            state=State.FULL,
            freeze_first=freeze_first,
            alternative="train only a new head (state 'head') as a baseline",
            lr_advice=_FINE_TUNE_LR,
            reason=(
                f"With {size} (fewer than {SMALL_DATASET_THRESHOLD}) retraining everything would "
                "overfit, but the data differ from the pretraining data, so the late, "
                "task-specific blocks encode concepts that do not carry over. Early blocks "
                "detect edges, colours and textures that transfer to almost any images "
                "(Yosinski et al. 2014): keep the first blocks frozen, about a third to a half "
                f"of them ({how_many}), and retrain the later blocks with a new head. CS231n "
                "suggests instead a linear classifier on the features of an earlier layer, the "
                "later blocks removed. When the images differ in their low-level statistics "
                "(colours, textures, noise), frozen early filters may be what fits least: "
                "measure both."
            ),
        )
    if quadrant is Quadrant.LARGE_SIMILAR:
        return Plan(
            quadrant=quadrant,
            state=State.FULL,
            freeze_first=0,
            alternative=None,
            lr_advice=_FINE_TUNE_LR,
            reason=(
                f"With {size} there is enough data to adjust every weight without overfitting, "
                "and since the images resemble the pretraining data the pretrained weights "
                "start close to a good solution. Replace the head and fine-tune the whole "
                "network from the pretrained weights (state 3), with a small learning rate so "
                "the good features are refined rather than destroyed."
            ),
        )
    return Plan(
        quadrant=quadrant,
        state=State.FULL,
        freeze_first=0,
        alternative="train from scratch",
        lr_advice=(
            f"{_FINE_TUNE_LR}; the further the data are from the pretraining data, the larger "
            "the best body rate tends to be (Li et al. 2020), so include larger rates in the "
            "sweep. Trained from scratch, the network needs the from-scratch learning rate and "
            "a longer schedule"
        ),
        reason=(
            f"With {size} there is enough data to train every weight, but the images differ "
            "from the pretraining data, and here the sources disagree. Some widely read "
            "tutorials say the pretrained weights will not help and the network should be "
            "trained from scratch; others fine-tune everything. CS231n allows training from "
            "scratch but advises initialising from the pretrained weights "
            "anyway, and Kornblith et al. (2019) and He, Girshick & Dollár (2019) find that "
            "fine-tuning everything from them is usually at least as good as training from "
            "scratch and converges much faster. So start from "
            "the pretrained weights (state 3, nothing frozen) and treat training from scratch "
            "as the alternative to measure: run both on the same seeds, long enough that "
            "neither still improves, and call a winner only when the interval of the paired "
            "difference excludes zero (ftlib.compare_paired); lesson 6 measures both."
        ),
    )


def _partial_freeze(num_blocks: int | None) -> tuple[int | None, str]:
    """How many top-level blocks to freeze for small, different data, and how to say so."""
    if num_blocks is None:
        return None, "how many by a sweep on validation data"
    if num_blocks < 3:
        return None, (
            f"this model has {num_blocks} top-level blocks, head included, so its body is one "
            "block that freeze_first cannot split: freeze its first layers by name with "
            "ftlib.freeze, and sweep how many on validation data"
        )
    freeze_first = min(max(round(PARTIAL_FREEZE_FRACTION * num_blocks), 1), num_blocks - 2)
    return freeze_first, f"here {freeze_first} of {num_blocks}"
