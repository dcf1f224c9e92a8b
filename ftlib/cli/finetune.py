"""``python -m ftlib finetune``: a torchvision classifier fine-tuned on a folder of images.

The run, in order: read and split the images (``splits``), build the model from its names
(``architecture``), choose the state (given, or ``ftlib.recommend``'s plan for the number of
training images per class and whether they resemble the pretraining data), ``ftlib.prepare``
it, train with ``ftlib.fit`` (in state "head" without augmentation, ``ftlib.fit_head_cached``:
the frozen body runs once), measure on validation and, once, on test, and write the outputs.

Under ``torchrun`` every process runs all of this on its share of each epoch (``fit``'s
DistributedDataParallel); the batch size is per process and only rank 0 writes files.
``fit_head_cached`` trains on one process only, so state "head" under torchrun uses ``fit``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from ftlib.cli.architecture import ModelSpec, starting_model
from ftlib.cli.images import ImageFiles, Preprocessing
from ftlib.cli.outputs import check_output_folder, write_run
from ftlib.cli.splits import Splits, read_splits
from ftlib.data.weights import resolve_weights
from ftlib.device import best_device
from ftlib.seeding import seed_everything
from ftlib.strategy import Plan, recommend
from ftlib.surgery.freezing import top_level_blocks
from ftlib.surgery.states import State, prepare
from ftlib.training import distributed
from ftlib.training.caching import fit_head_cached
from ftlib.training.early_stopping import EarlyStopping
from ftlib.training.history import History
from ftlib.training.loop import evaluate, fit
from ftlib.training.performance import Performance

AMP_SETTINGS = {"auto": True, "off": False, "bf16": "bf16", "fp16": "fp16"}
"""``--amp`` values and what ``fit(amp=...)`` gets for each."""


@dataclass(frozen=True)
class FinetuneSettings:
    """Everything ``python -m ftlib finetune`` is told; the defaults are the command's.

    ``weights`` is a weights name or None (random initial values); ``state`` one of
    ``"predict"``, ``"head"``, ``"full"``, ``"auto"``; ``similar`` answers auto's question
    (None when not asked); ``amp`` a key of ``AMP_SETTINGS``; ``patience`` turns on early
    stopping on the validation loss.
    """

    data: Path
    model: str
    out: Path
    weights: str | None = "DEFAULT"
    state: str = "auto"
    similar: bool | None = None
    freeze_first: int | None = None
    epochs: int = 5
    lr: float = 1e-4
    batch_size: int = 32
    image_size: int | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    augment: bool = False
    patience: int | None = None
    device: str | None = None
    amp: str = "auto"
    channels_last: bool = False
    seed: int = 0
    workers: int = 2
    progress: bool = True
    overwrite: bool = False


def run_finetune(settings: FinetuneSettings) -> dict[str, Any]:
    """Fine-tune as ``settings`` say, write the outputs (rank 0), and return the summary.

    Why: the common course project (my images, a torchvision model, one of three states) as
    one call, with the held-out numbers a report needs.

    Returns:
        The summary written to ``summary.json``: data, model, plan, settings, the final
        ``validation`` and ``test`` metrics, seconds, and the files written.

    Raises:
        ValueError, FileNotFoundError: bad settings or data; each message names the bad
            value and what to do (``WeightsNotFoundError`` says where the weights file goes).
    """
    started = time.perf_counter()
    device = best_device(settings.device)
    world = distributed.current_world(device)
    check_output_folder(settings.out, overwrite=settings.overwrite)
    _check_options(settings)
    weights = resolve_weights(settings.model, settings.weights) if settings.weights else None
    preprocessing = Preprocessing.for_model(settings.model, weights, settings.image_size)
    splits = read_splits(
        settings.data,
        val_fraction=settings.val_fraction,
        test_fraction=settings.test_fraction,
        seed=settings.seed,
    )
    if settings.state == "predict":
        _check_predict(settings, weights, splits)
    generator = seed_everything(settings.seed)
    weights_name = str(weights) if weights is not None else None
    model = starting_model(settings.model, weights_name)
    plan = _plan(settings, splits, model) if settings.state == "auto" else None
    state = plan.state if plan is not None else State.parse(settings.state)
    freeze_first = _freeze_first(settings, plan)
    num_classes = None if state is State.PREDICT else len(splits.classes)
    prepare(model, state, num_classes, freeze_first=freeze_first)
    spec = ModelSpec(settings.model, weights_name, state.value, len(splits.classes), freeze_first)

    loaders = _loaders(splits, preprocessing, settings, generator, device, world.size)
    measuring = _measuring(settings, device, len(splits.classes))
    cached = state is State.HEAD and not settings.augment and not world.distributed
    history = _train(model, loaders, settings, state, cached, measuring)
    final = {
        name: evaluate(model, loaders[split], **measuring)
        for name, split in (("validation", "val"), ("test", "test"))
    }
    summary = {
        "data": {
            "root": str(splits.root),
            "classes": splits.classes,
            "images": splits.counts(),
            "split_folders": list(splits.given),
            "smallest_training_class": splits.smallest_class(),
        },
        "model": spec.to_dict(),
        "plan": _plan_dict(plan),
        "settings": {
            **_settings_dict(settings),
            "image_size": preprocessing.size,
            "device": str(device),
            "processes": world.size,
            "cached_features": cached,
        },
        "epochs_trained": len(history),
        **final,
        "seconds": time.perf_counter() - started,
    }
    if world.is_main:
        summary["files"] = write_run(
            settings.out,
            model,
            checkpoint_extra={
                "classes": splits.classes,
                "model": spec.to_dict(),
                "preprocessing": preprocessing.to_dict(),
                "history": history.to_dict(),
            },
            history=history,
            splits=splits.to_dict(),
            summary=summary,
        )
    distributed.barrier(world)
    return summary


def _check_options(settings: FinetuneSettings) -> None:
    """Refuse, before anything is read or built, options that contradict each other."""
    if settings.state != "auto":
        State.parse(settings.state)
    if settings.amp not in AMP_SETTINGS:
        raise ValueError(f"unknown amp {settings.amp!r}; use one of {', '.join(AMP_SETTINGS)}")
    if settings.state == "auto" and settings.similar is None:
        raise ValueError(
            "--state auto plans from two facts: the images per class (counted in --data) and "
            "whether they look like the pretraining data (ImageNet photos for torchvision "
            "weights); say which with --similar or --different, or choose --state "
            "predict, head or full yourself"
        )
    if settings.freeze_first is not None and settings.state != "full":
        raise ValueError(
            f"--freeze-first applies to --state full only (got --state {settings.state}; "
            "auto takes it from the plan, head freezes the whole body)"
        )


def _check_predict(settings: FinetuneSettings, weights: Any, splits: Splits) -> None:
    """State "predict" keeps the pretrained head, so the folder's classes must be its classes."""
    if weights is None:
        raise ValueError(
            "--state predict uses the pretrained model as it is, but --weights none gives it "
            "random weights; name the weights (--weights DEFAULT), or train with --state head"
        )
    outputs = len(weights.meta["categories"])
    if outputs != len(splits.classes):
        raise ValueError(
            f"--state predict keeps the pretrained head of {settings.model}, which has "
            f"{outputs} classes ({weights}), but {settings.data} has {len(splits.classes)}; "
            f"train a new head for your classes with --state head (or full, or auto)"
        )


def _plan(settings: FinetuneSettings, splits: Splits, model: nn.Module) -> Plan:
    return recommend(
        splits.smallest_class(), bool(settings.similar), num_blocks=len(top_level_blocks(model))
    )


def _freeze_first(settings: FinetuneSettings, plan: Plan | None) -> int:
    """Given by ``--freeze-first``, taken from the plan, or 0 (when the plan leaves it open)."""
    if plan is not None:
        return plan.freeze_first or 0
    return settings.freeze_first or 0


def _loaders(
    splits: Splits,
    preprocessing: Preprocessing,
    settings: FinetuneSettings,
    generator: Any,
    device: Any,
    world_size: int,
) -> dict[str, DataLoader]:
    """A shuffling training loader (seeded) and in-order validation and test loaders; the
    training loader drops a last, shorter batch where each process has more than one."""
    options = {
        "batch_size": settings.batch_size,
        "num_workers": settings.workers,
        "pin_memory": device.type == "cuda",
        "persistent_workers": settings.workers > 0,
    }
    ragged = len(splits.files["train"]) // world_size > settings.batch_size
    loaders = {}
    for split, pairs in splits.files.items():
        training = split == "train"
        transform = preprocessing.training(settings.augment and training)
        images = ImageFiles([path for path, _ in pairs], transform, [label for _, label in pairs])
        # A last training batch of one image breaks batch norm; with shuffling each epoch
        # leaves out other images, so dropping the ragged end loses nothing for good.
        extra = {"shuffle": True, "generator": generator, "drop_last": ragged} if training else {}
        loaders[split] = DataLoader(images, **options, **extra)
    return loaders


def _measuring(settings: FinetuneSettings, device: Any, num_classes: int) -> dict[str, Any]:
    """The options ``fit`` and ``evaluate`` share: where, in which precision, which top-k
    (top-5 only where it differs from 1: with more than five classes)."""
    return {
        "device": device,
        "amp": AMP_SETTINGS[settings.amp],
        "topk": (1, 5) if num_classes > 5 else (1,),
        "progress": settings.progress,
    }


def _train(
    model: nn.Module,
    loaders: dict[str, DataLoader],
    settings: FinetuneSettings,
    state: State,
    cached: bool,
    measuring: dict[str, Any],
) -> History:
    """The training history: none in state "predict"; the head on cached features; fit."""
    if state is State.PREDICT:
        return History()
    options = {
        **measuring,
        "epochs": settings.epochs,
        "lr": settings.lr,
        "val_loader": loaders["val"],
        "performance": Performance(channels_last=settings.channels_last),
        "early_stopping": EarlyStopping("val_loss", patience=settings.patience)
        if settings.patience
        else None,
    }
    train = fit_head_cached if cached else fit
    return train(model, loaders["train"], **options)


def _settings_dict(settings: FinetuneSettings) -> dict[str, Any]:
    return {
        key: str(value) if isinstance(value, Path) else value
        for key, value in asdict(settings).items()
    }


def _plan_dict(plan: Plan | None) -> dict[str, Any] | None:
    """The plan as plain data (None when the state was given)."""
    if plan is None:
        return None
    return {
        key: str(value) if key in ("quadrant", "state") else value
        for key, value in asdict(plan).items()
    }
