"""fit(checkpoint=..., resume=...): a stopped run continues exactly as if it had not stopped."""

import math
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ftlib.seeding import seed_everything
from ftlib.training import EarlyStopping, fit
from ftlib.training.checkpoint import checkpoint_extra, load_checkpoint, save_checkpoint

EPOCHS, BATCH = 4, 16


def blobs(n=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0.0], [-3.0, 3.0], [-3.0, -3.0]])
    return TensorDataset(centres[targets] + torch.randn(n, 2, generator=generator), targets)


def start(seed=0):
    """A model with dropout, a shuffling loader, a per-step one-cycle schedule, all seeded."""
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    data = DataLoader(blobs(), batch_size=BATCH, shuffle=True, generator=seed_everything(seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=5e-2, total_steps=EPOCHS * math.ceil(len(data.dataset) / BATCH)
    )
    return model, data, {"optimizer": optimizer, "scheduler": schedule, "scheduler_step": "step"}


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history.epochs]


def test_a_resumed_run_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    model, data, parts = start()
    straight = fit(model, data, epochs=EPOCHS, progress=False, **parts)

    first, data, parts = start()
    fit(first, data, epochs=2, checkpoint=tmp_path / "run.pt", progress=False, **parts)
    torch.manual_seed(999), random.seed(999), np.random.seed(999)  # a new process, say
    resumed, data, parts = start(seed=5)  # other initial weights: the checkpoint replaces them
    history = fit(resumed, data, epochs=EPOCHS, resume=tmp_path / "run.pt", progress=False, **parts)

    assert without_seconds(history) == without_seconds(straight)
    for name, tensor in model.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name


def test_a_run_checkpoint_is_an_ordinary_checkpoint_with_epoch_and_history(tmp_path):
    model, data, parts = start()
    history = fit(model, data, epochs=2, checkpoint=tmp_path / "run.pt", progress=False, **parts)
    extra = checkpoint_extra(tmp_path / "run.pt")
    assert extra["epoch"] == 2 and extra["history"] == history.to_dict()
    other, _, _ = start(seed=3)
    load_checkpoint(other, tmp_path / "run.pt")
    assert all(torch.equal(other.state_dict()[n], t) for n, t in model.state_dict().items())


def test_resuming_a_finished_run_trains_no_more(tmp_path):
    model, data, parts = start()
    fit(model, data, epochs=2, checkpoint=tmp_path / "run.pt", progress=False, **parts)
    again, data, parts = start(seed=4)
    history = fit(again, data, epochs=2, resume=tmp_path / "run.pt", progress=False, **parts)
    assert len(history) == 2
    assert all(torch.equal(again.state_dict()[n], t) for n, t in model.state_dict().items())


def test_weights_only_checkpoints_and_other_options_cannot_be_resumed(tmp_path):
    model, data, parts = start()
    save_checkpoint(model, tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="holds weights only, not a run to resume"):
        fit(model, data, epochs=2, resume=tmp_path / "weights.pt", progress=False, **parts)
    fit(model, data, epochs=1, checkpoint=tmp_path / "run.pt", progress=False, **parts)
    with pytest.raises(ValueError, match="had a scheduler and this fit call has none"):
        fit(model, data, epochs=2, resume=tmp_path / "run.pt", progress=False)


def diverging_task():
    """Validation labels are a permutation of the training labels: the better the model fits
    the training set, the worse its validation loss, from the first epoch on."""
    train = blobs()
    inputs, targets = blobs(seed=1).tensors
    return train, TensorDataset(inputs, (targets + 1) % 3)


def stopped_run(rule, epochs=20, **options):
    seed_everything(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    train, val = diverging_task()
    history = fit(
        model,
        DataLoader(train, batch_size=16),
        epochs=epochs,
        lr=1e-2,
        val_loader=DataLoader(val, batch_size=64),
        early_stopping=rule,
        progress=False,
        **options,
    )
    return model, history


def test_early_stopping_waits_patience_epochs_and_restores_the_best_weights():
    model, history = stopped_run(EarlyStopping(monitor="val_loss", patience=2))
    best = history.best("val_loss")["epoch"]
    assert len(history) == best + 2 < 20
    reference, _ = stopped_run(None, epochs=best)
    assert all(torch.equal(model.state_dict()[n], t) for n, t in reference.state_dict().items())


def test_early_stopping_can_keep_the_last_weights_and_watch_accuracies():
    kept, history = stopped_run(EarlyStopping(monitor="val_top1", patience=1, restore_best=False))
    assert history.best("val_top1")["epoch"] == len(history) - 1
    last, _ = stopped_run(None, epochs=len(history))
    assert all(torch.equal(kept.state_dict()[n], t) for n, t in last.state_dict().items())


def test_a_run_stopped_early_resumes_as_stopped(tmp_path):
    rule = EarlyStopping(patience=2)
    model, history = stopped_run(rule, checkpoint=tmp_path / "run.pt")
    again, resumed = stopped_run(rule, resume=tmp_path / "run.pt")
    assert without_seconds(resumed) == without_seconds(history)
    assert all(torch.equal(again.state_dict()[n], t) for n, t in model.state_dict().items())


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda: EarlyStopping(patience=0), "patience must be a positive integer, got 0"),
        (lambda: EarlyStopping(min_delta=-1.0), "min_delta must be a number >= 0"),
    ],
)
def test_early_stopping_rules_are_checked(rule, message):
    with pytest.raises(ValueError, match=message):
        rule()


def test_early_stopping_on_validation_needs_a_val_loader():
    train, _ = diverging_task()
    with pytest.raises(ValueError, match="'val_loss', which needs a val_loader"):
        fit(nn.Linear(2, 3), DataLoader(train), epochs=2, early_stopping=EarlyStopping())


def test_early_stopping_on_an_unrecorded_key_names_the_keys_before_training():
    train, _ = diverging_task()
    model = nn.Linear(2, 3)
    before = model.weight.detach().clone()
    with pytest.raises(ValueError, match=r"'train_top3', which this run does not record; it rec"):
        fit(
            model,
            DataLoader(train, batch_size=16),
            epochs=2,
            topk=(1,),
            early_stopping=EarlyStopping(monitor="train_top3"),
            progress=False,
        )
    assert torch.equal(model.weight, before), "nothing trained before the check"


def resume_cases():
    def other_architecture(model, parts):
        other = nn.Sequential(nn.Linear(2, 8), nn.Linear(8, 3))
        return other, {"optimizer": torch.optim.AdamW(other.parameters())}

    def more_classes(model, parts):
        model[3] = nn.Linear(16, 5)
        return model, {"optimizer": torch.optim.AdamW(model.parameters())}

    def another_optimizer(model, parts):
        return model, {"optimizer": torch.optim.SGD(model.parameters(), lr=0.1)}

    def another_freezing(model, parts):
        model[0].requires_grad_(False)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=16)
        return model, {"optimizer": optimizer, "scheduler": schedule}

    return {
        "other-architecture": (other_architecture, "holds Sequential of another configuration"),
        "more-classes": (more_classes, r"\(3, 16\) in the checkpoint .* as many classes"),
        "another-optimizer": (another_optimizer, "used the optimizer AdamW .* has SGD"),
        "another-freezing": (
            another_freezing,
            r"parameter groups differ .* \[4\] saved, \[2\] now",
        ),
    }


@pytest.mark.parametrize("case", list(resume_cases()))
def test_resuming_into_other_parts_names_what_differs(tmp_path, case):
    change, message = resume_cases()[case]
    model, data, parts = start()
    fit(model, data, epochs=2, checkpoint=tmp_path / "run.pt", progress=False, **parts)
    model, data, parts = start()
    model, replaced = change(model, parts)
    parts = {**parts, **replaced}
    if "optimizer" in replaced and "scheduler" not in replaced:
        parts["scheduler"] = torch.optim.lr_scheduler.OneCycleLR(
            parts["optimizer"], max_lr=0.05, total_steps=16
        )
    with pytest.raises(ValueError, match=message):
        fit(model, data, epochs=EPOCHS, resume=tmp_path / "run.pt", progress=False, **parts)


def test_resuming_with_fewer_epochs_than_were_trained_says_how_many_to_ask_for(tmp_path):
    model, data, parts = start()
    fit(model, data, epochs=3, checkpoint=tmp_path / "run.pt", progress=False, **parts)
    model, data, parts = start()
    with pytest.raises(ValueError, match="trained 3 epochs already, more than epochs=2; pass e"):
        fit(model, data, epochs=2, resume=tmp_path / "run.pt", progress=False, **parts)


def test_resuming_with_other_records_is_refused(tmp_path):
    model, data, parts = start()
    fit(model, data, epochs=2, checkpoint=tmp_path / "run.pt", topk=(1,), progress=False, **parts)
    model, data, parts = start()
    with pytest.raises(ValueError, match=r"recorded \['train_loss', 'train_top1'\] and this fit"):
        fit(model, data, epochs=EPOCHS, resume=tmp_path / "run.pt", progress=False, **parts)
