"""What a project does with a model from any zoo, as one check: swap the heads, put the model in
each state, build parameter groups, take a training step, and see that each did its job."""

from __future__ import annotations

import torch
from torch import nn

from ftlib.surgery.freezing import top_level_blocks
from ftlib.surgery.heads import all_heads, find_heads, swap_head
from ftlib.surgery.states import prepare
from ftlib.training.optim import param_groups

NUM_CLASSES = 3


def logits_of(output) -> torch.Tensor:
    """The class scores of a plain tensor, a Hugging Face ``ModelOutput`` or a (main, aux) tuple."""
    if hasattr(output, "logits"):
        return output.logits
    return output[0] if isinstance(output, (tuple, list)) else output


def check_fine_tunes(model: nn.Module, images: torch.Tensor) -> list[str]:
    """Run the whole fine-tuning surgery on ``model`` with a batch of ``images``.

    Returns:
        The names of the heads that were swapped, for the caller to compare with the zoo's own.
    """
    torch.manual_seed(0)
    targets = torch.arange(len(images)) % NUM_CLASSES
    swap_head(model, NUM_CLASSES)
    names = find_heads(model)
    assert all(_outputs(model.get_submodule(name)) == NUM_CLASSES for name in names), names

    prepare(model, "predict")
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    with torch.no_grad():
        assert logits_of(model(images)).shape == (len(images), NUM_CLASSES)

    prepare(model, "head")
    head_ids = {id(p) for head in all_heads(model) for p in head.parameters()}
    assert {id(p) for p in model.parameters() if p.requires_grad} == head_ids
    before = {name: t.detach().clone() for name, t in model.state_dict().items()}
    _step(model, param_groups(model, lr=1e-2, weight_decay=0.05), images, targets)
    after = model.state_dict()
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    head_names = {
        f"{head}.{p}" for head in names for p, _ in model.get_submodule(head).named_parameters()
    }
    assert moved and moved <= head_names, f"state 2 moved more than the heads: {moved - head_names}"

    prepare(model, "full", freeze_first=_stem_blocks(model))
    groups = param_groups(model, lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    assert len({group["lr"] for group in groups}) >= 3, "layer decay gives the body several rates"
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    _step(model, groups, images, targets)
    body_moved = [
        name
        for name, p in model.named_parameters()
        if name in before and id(p) not in head_ids and not torch.equal(before[name], p)
    ]
    assert body_moved, "state 3 trains the body too"
    return names


def _step(
    model: nn.Module, groups: list[dict], images: torch.Tensor, targets: torch.Tensor
) -> None:
    optimizer = torch.optim.AdamW(groups)
    loss = nn.functional.cross_entropy(logits_of(model(images)), targets)
    assert torch.isfinite(loss), loss
    loss.backward()
    optimizer.step()


def _stem_blocks(model: nn.Module) -> int:
    """1 where the first top-level block is a stem; 0 where it is the whole backbone (Hugging
    Face models have two or three top-level blocks: the backbone and the heads)."""
    first = top_level_blocks(model)[0][1]
    share = sum(p.numel() for p in first.parameters()) / sum(p.numel() for p in model.parameters())
    return int(share < 0.5)


def _outputs(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
