"""What timm and Hugging Face transformers say about their own models' classifier heads.

Both libraries know where their heads are, which a generic guess cannot always see: a timm DeiT
or LeViT has a second, distillation head, CrossViT one head per branch, and a Hugging Face model
keeps its task head outside its backbone. The models are recognised by what they carry, so
nothing here imports timm or transformers:

- timm: ``model.pretrained_cfg["classifier"]`` names the head, or a tuple of heads, main first.
- Hugging Face: everything outside the backbone (``getattr(model, model.base_model_prefix)``)
  is the task head; its layers with ``config.num_labels`` outputs are the classifiers.
"""

from __future__ import annotations

from torch import nn


def declared_heads(model: nn.Module) -> tuple[str, list[str]] | None:
    """The zoo a model comes from and the head names it declares, main head first.

    Returns:
        ``("timm", names)`` or ``("Hugging Face", names)``; the names may be empty (a Hugging
        Face backbone without a task head) or name layers that are not classifiers (a timm model
        built with ``num_classes=0``). None for a model from neither zoo.
    """
    config = getattr(model, "pretrained_cfg", None)
    if isinstance(config, dict) and config.get("classifier"):
        names = config["classifier"]
        return "timm", [names] if isinstance(names, str) else list(names)
    prefix = getattr(model, "base_model_prefix", None)
    labels = getattr(getattr(model, "config", None), "num_labels", None)
    if isinstance(prefix, str) and isinstance(labels, int):
        backbone = getattr(model, prefix, None)
        if not isinstance(backbone, nn.Module):
            return "Hugging Face", []  # the model is the backbone itself
        inside = {id(module) for module in backbone.modules()}
        outside = [
            (name, module)
            for name, module in model.named_modules()
            if name and id(module) not in inside and isinstance(module, (nn.Linear, nn.Conv2d))
        ]
        classifiers = [name for name, module in outside if layer_outputs(module) == labels]
        return "Hugging Face", classifiers or [name for name, _ in outside[-1:]]
    return None


def zoo_hint(zoo: str, model: nn.Module) -> str:
    """How to give a model of ``zoo`` a classifier head when it has none."""
    kind = type(model).__name__
    if zoo == "timm":
        return (
            f"this timm {kind} has no classifier (built with num_classes=0?); build it with "
            "timm.create_model(name, num_classes=N) or call model.reset_classifier(N)"
        )
    return (
        f"this Hugging Face {kind} has no classification head; use the model class "
        f"for image classification, e.g. AutoModelForImageClassification.from_config(config)"
    )


def record_num_classes(model: nn.Module, num_classes: int) -> None:
    """Tell the model's own bookkeeping that its heads now have ``num_classes`` outputs.

    Why: timm models keep ``num_classes``, Hugging Face models ``num_labels`` and
    ``config.num_labels``; a Hugging Face model reshapes its logits with ``num_labels`` when it
    computes its own loss, so a stale value breaks training after a head swap.
    """
    if isinstance(getattr(model, "num_classes", None), int):
        model.num_classes = num_classes
    config = getattr(model, "config", None)
    if isinstance(getattr(config, "num_labels", None), int):
        config.num_labels = num_classes  # also resets id2label and label2id to the new size
        if isinstance(getattr(model, "num_labels", None), int):
            model.num_labels = num_classes


def timm_layer_ids(model: nn.Module) -> dict[str, int] | None:
    """timm's layer of each parameter (0 at the stem; the head in the top group), as timm's own
    ``param_groups_layer_decay`` numbers them; None for a model that is not timm's."""
    matcher = getattr(model, "group_matcher", None)
    if not callable(matcher) or not isinstance(getattr(model, "pretrained_cfg", None), dict):
        return None
    from timm.models import group_parameters  # a timm model: timm is imported already

    return group_parameters(model, matcher(coarse=False), reverse=True)


def layer_outputs(layer: nn.Linear | nn.Conv2d) -> int:
    """How many outputs a classifier layer has (a Linear's features, a Conv2d's channels)."""
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
