"""The three states of a pretrained model, and one call to put a model into each.

1. PREDICT: use the pretrained model as it is; nothing trains.
2. HEAD: a new head learns on top of a frozen body (feature extraction, linear probing).
3. FULL: everything learns (fine-tuning); ``freeze_first=k`` keeps the first ``k`` top-level
   blocks frozen, a point between states 2 and 3.
"""

from __future__ import annotations

from torch import nn

from ftlib._choice import Choice
from ftlib.surgery.freezing import freeze, freeze_to, top_level_blocks, unfreeze
from ftlib.surgery.heads import find_aux_heads, find_head, swap_head


class State(Choice):
    """What a pretrained model is used for: predict (1), train the head (2), train all (3)."""

    PREDICT = "predict"
    HEAD = "head"
    FULL = "full"


def prepare(
    model: nn.Module,
    state: State | str,
    num_classes: int | None = None,
    *,
    freeze_first: int = 0,
    head: str | None = None,
) -> nn.Module:
    """Put ``model`` into one of the three states, in place.

    Why: each state is a few lines of surgery (swap the head, freeze, set the mode) that are
    easy to get subtly wrong, e.g. leaving batch-norm statistics drifting in a frozen body.

    Args:
        model: a (pretrained) classifier.
        state: ``"predict"``, ``"head"`` or ``"full"`` (or a ``State``).
        num_classes: for HEAD and FULL, replace the head with a fresh one with this many
            outputs; None keeps the current head. Must be None for PREDICT.
        freeze_first: for FULL, how many top-level blocks stay frozen (see ``freeze_to``).
        head: the head's name when ``find_head`` picks the wrong layer.

    In state HEAD the new head, and any auxiliary heads, are the only parameters that train;
    frozen batch-norm layers keep their statistics and dropout in the frozen body is off (see
    ``ftlib.freeze``), so the body is a fixed function whose features can be cached.

    Returns:
        The head module (the new one if it was replaced).

    Raises:
        ValueError: unknown state, ``num_classes`` given for PREDICT, ``freeze_first`` given for
            a state other than FULL, or a ``freeze_first`` that would freeze the head.
        HeadNotFoundError: no head could be found.
    """
    state = State.parse(state)
    if state is State.PREDICT and num_classes is not None:
        raise ValueError(
            f"state='predict' keeps the pretrained head, but num_classes={num_classes} was "
            "given; pass num_classes=None, or use state='head' to train a new head"
        )
    if state is not State.FULL and freeze_first:
        raise ValueError(
            f"freeze_first={freeze_first} only applies to state='full' (state={state.value!r} "
            "already freezes the whole body); use state='full' for partial freezing"
        )
    name = head or find_head(model)
    if state is State.FULL:
        _check_freeze_first(model, name, freeze_first)
    new_head = (
        model.get_submodule(name)
        if num_classes is None
        else swap_head(model, num_classes, head=name)
    )
    if state is State.PREDICT:
        freeze(model)
        model.eval()
    elif state is State.HEAD:
        freeze(model)
        # Auxiliary heads (GoogLeNet, Inception v3) are new too, and their loss counts in training.
        unfreeze(model, [new_head, *(model.get_submodule(aux) for aux in find_aux_heads(model))])
        model.train()
    else:
        freeze_to(model, freeze_first)
        model.train()
    return new_head


def _check_freeze_first(model: nn.Module, head: str, freeze_first: int) -> None:
    """Refuse, before any surgery, a ``freeze_first`` that would also freeze the head."""
    blocks = [name for name, _ in top_level_blocks(model)]
    head_block = head.partition(".")[0]
    limit = blocks.index(head_block) if head_block in blocks else len(blocks)
    if not 0 <= freeze_first <= limit:
        raise ValueError(
            f"freeze_first={freeze_first} is out of range: use 0 <= freeze_first <= {limit}, "
            f"the number of top-level blocks before the one holding the head {head!r} "
            f"(blocks: {', '.join(blocks)})"
        )
