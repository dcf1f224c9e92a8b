"""The three states of a pretrained model, and one call to put a model into each.

1. PREDICT: use the pretrained model as it is; nothing trains.
2. HEAD: a new head learns on top of a frozen body (feature extraction, linear probing).
3. FULL: everything learns (fine-tuning); ``freeze_first=k`` keeps the first ``k`` top-level
   blocks frozen, a point between states 2 and 3.
"""

from __future__ import annotations

from torch import nn

from ftlib._checks import as_count, check_materialised, check_model
from ftlib._choice import Choice
from ftlib.surgery.freezing import freeze, freeze_to, top_level_blocks, unfreeze
from ftlib.surgery.heads import HeadNames, find_heads, swap_head


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
    head: HeadNames | None = None,
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
        head: the head's name (or names) when ``find_heads`` cannot tell which layer it is.

    In state HEAD the heads (the main one and any auxiliary, distillation or per-branch heads,
    see ``ftlib.surgery.heads.find_heads``) are the only parameters that train;
    frozen batch-norm layers keep their statistics and dropout in the frozen body is off (see
    ``ftlib.freeze``), so the body is a fixed function whose features can be cached.

    Returns:
        The main head module (the new one if it was replaced).

    Raises:
        ValueError: unknown state, ``num_classes`` given for PREDICT or not a positive integer,
            ``freeze_first`` not an integer, given for a state other than FULL, or so large that
            it would freeze the head, or the model has lazy layers not yet run (run one forward
            pass first). Nothing is changed before these checks pass.
        HeadNotFoundError: no head could be found, or it is ambiguous (``AmbiguousHeadError``).
    """
    check_model(model, "prepare")
    check_materialised(model, "prepare")
    if not isinstance(state, str):  # State members are strings too
        raise ValueError(
            f"state must be 'predict', 'head' or 'full', got {state!r}; the state comes before "
            f"the number of classes: prepare(model, 'head', {state!r})"
        )
    state = State.parse(state)
    freeze_first = as_count(freeze_first, "freeze_first")
    if num_classes is not None:
        num_classes = as_count(num_classes, "num_classes", minimum=1)
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
    names = find_heads(model, head)
    if state is State.FULL:
        _check_freeze_first(model, names, freeze_first)
    if num_classes is not None:
        swap_head(model, num_classes, head=names)
    if state is State.PREDICT:
        freeze(model)
        model.eval()
    elif state is State.HEAD:
        freeze(model)
        # Auxiliary and distillation heads are new too, and take part in the forward pass.
        unfreeze(model, names)
        model.train()
    else:
        freeze_to(model, freeze_first)
        model.train()
    return model.get_submodule(names[0])


def _check_freeze_first(model: nn.Module, heads: list[str], freeze_first: int) -> None:
    """Refuse, before any surgery, a ``freeze_first`` that would also freeze a head."""
    blocks = [name for name, _ in top_level_blocks(model)]
    limits = {blocks.index(h.partition(".")[0]): h for h in heads if h.partition(".")[0] in blocks}
    limit = min(limits, default=len(blocks))
    if freeze_first > limit:
        head = limits.get(limit, heads[0])
        raise ValueError(
            f"freeze_first={freeze_first} is out of range: use 0 <= freeze_first <= {limit}, "
            f"the number of top-level blocks before the one holding the head {head!r} "
            f"(blocks: {', '.join(blocks)})"
        )
