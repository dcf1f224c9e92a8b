"""fine_tune and gradual_unfreeze: what trains in each phase, at which rates, for how long."""

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader

from ftlib.data import digits_tasks
from ftlib.models import load_pretrained
from ftlib.seeding import seed_everything
from ftlib.surgery.heads import swap_head
from ftlib.surgery.lora import add_lora
from ftlib.training import EarlyStopping, evaluate
from ftlib.training.recipes import fine_tune, gradual_unfreeze

FIT = {"device": "cpu", "progress": False, "topk": (1,)}


@pytest.fixture(scope="module")
def tasks():
    return digits_tasks()


def new_task_model(seed=0):
    """The shipped digits model (pretrained on 0-4) with a fresh head for the digits 5-9."""
    seed_everything(seed)
    model = load_pretrained("digits")
    swap_head(model, num_classes=5)
    return model


class StepLog:
    """For every optimizer step: the names of the parameters in the optimizer, and the rates."""

    def __init__(self, model):
        self.names = {id(p): name for name, p in model.named_parameters()}
        self.steps = []

    def __call__(self, optimizer, args, kwargs):
        groups = [
            ({self.names[id(p)] for p in group["params"]}, group["lr"])
            for group in optimizer.param_groups
        ]
        self.steps.append(groups)

    def trained(self, step):
        return set().union(*(names for names, _ in self.steps[step]))

    def rates(self, step, prefix):
        return {lr for names, lr in self.steps[step] if any(n.startswith(prefix) for n in names)}


def logged(model):
    log = StepLog(model)
    return log, register_optimizer_step_pre_hook(log)


def test_fine_tune_trains_the_head_alone_then_everything_with_a_faster_head(tasks):
    model = new_task_model()
    body_before = {n: p.clone() for n, p in model.named_parameters() if not n.startswith("fc.")}
    data = DataLoader(tasks.target_train, batch_size=64, shuffle=True)
    log, handle = logged(model)
    try:
        history = fine_tune(
            model,
            data,
            epochs=2,
            freeze_epochs=1,
            lr=1e-3,
            one_cycle=False,
            val_loader=DataLoader(tasks.target_test, batch_size=256),
            **FIT,
        )
    finally:
        handle.remove()
    per_epoch = len(data)
    head = {"fc.weight", "fc.bias"}
    assert log.trained(0) == head and log.trained(per_epoch - 1) == head
    assert log.trained(per_epoch) == {name for name, _ in model.named_parameters()}
    assert sorted(log.rates(per_epoch, "block1")) == pytest.approx([1e-3])
    assert sorted(log.rates(per_epoch, "fc.")) == pytest.approx([1e-2])
    assert sorted(log.rates(0, "fc.")) == pytest.approx([1e-2])
    assert history.column("epoch") == [1, 2, 3] and len(log.steps) == 3 * per_epoch
    assert all(p.requires_grad for p in model.parameters())
    changed = [n for n, p in model.named_parameters() if n in body_before]
    assert all(not torch.equal(dict(model.named_parameters())[n], body_before[n]) for n in changed)
    assert history.last["val_top1"] > 0.8


def test_fine_tune_schedules_one_cycle_in_each_phase_and_can_skip_the_head_phase(tasks):
    model = new_task_model()
    data = DataLoader(tasks.target_train, batch_size=128)
    log, handle = logged(model)
    try:
        fine_tune(model, data, epochs=1, freeze_epochs=0, lr=1e-3, **FIT)
    finally:
        handle.remove()
    body = [min(log.rates(step, "block1")) for step in range(len(log.steps))]
    assert len(body) == len(data) and log.trained(0) == {n for n, _ in model.named_parameters()}
    assert body[0] < max(body) and body[-1] < 0.01 * max(body)
    assert max(body) == pytest.approx(1e-3, rel=0.2)


def test_gradual_unfreeze_adds_one_block_from_the_top_in_every_stage(tasks):
    model = new_task_model()
    data = DataLoader(tasks.target_train, batch_size=256)  # 3 batches: one stage = 3 steps
    log, handle = logged(model)
    try:
        history = gradual_unfreeze(model, data, epochs_per_stage=1, one_cycle=False, **FIT)
    finally:
        handle.remove()
    blocks = [
        {n for n, _ in model.named_parameters() if n.startswith(b)}
        for b in ("fc.", "block3", "block2", "block1")
    ]
    expected = [set().union(*blocks[: stage + 1]) for stage in range(4)]
    assert [log.trained(3 * stage) for stage in range(4)] == expected
    assert history.column("epoch") == [1, 2, 3, 4]
    assert all(p.requires_grad for p in model.parameters())


def test_gradual_unfreeze_can_stop_before_the_first_blocks(tasks):
    model = new_task_model()
    gradual_unfreeze(model, DataLoader(tasks.target_train, batch_size=256), stages=2, **FIT)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc", "block3"}
    with pytest.raises(ValueError, match="stages must be an int from 1 to 4"):
        gradual_unfreeze(model, DataLoader(tasks.target_train), stages=5, **FIT)


def test_recipes_refuse_the_options_they_set_themselves(tasks):
    data = DataLoader(tasks.target_train, batch_size=256)
    with pytest.raises(ValueError, match="leave out optimizer, scheduler: the recipe runs"):
        fine_tune(new_task_model(), data, epochs=1, optimizer=None, scheduler=None)
    with pytest.raises(ValueError, match="freeze_epochs must be a non-negative integer, got -1"):
        fine_tune(new_task_model(), data, epochs=1, freeze_epochs=-1)


def test_a_one_cycle_recipe_needs_a_loader_with_a_length(tasks):
    batches = (batch for batch in DataLoader(tasks.target_train, batch_size=256))
    with pytest.raises(ValueError, match="no length; pass one_cycle=False"):
        fine_tune(new_task_model(), batches, epochs=1, **FIT)


def test_fine_tune_beats_training_the_new_head_alone_for_as_long(tasks):
    """The point of the recipe: on 5-9 with all 672 images, adapting the body pays off."""
    test = DataLoader(tasks.target_test, batch_size=256)
    gaps = []
    for seed in (0, 1):
        tuned, alone = new_task_model(seed), new_task_model(seed)
        data = DataLoader(tasks.target_train, batch_size=64, shuffle=True)
        fine_tune(tuned, data, epochs=3, lr=1e-3, **FIT)
        gradual_unfreeze(alone, data, epochs_per_stage=4, stages=1, lr=1e-3, **FIT)
        gaps.append(evaluate(tuned, test, **FIT)["top1"] - evaluate(alone, test, **FIT)["top1"])
    assert min(gaps) > 0


RUN = {fine_tune: {"epochs": 1, "progress": False}, gradual_unfreeze: {"progress": False}}


@pytest.mark.parametrize("recipe", [fine_tune, gradual_unfreeze])
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"loss_fn": torch.nn.CrossEntropyLoss}, TypeError, "loss_fn is the class"),
        ({"topk": (1, 8)}, ValueError, "top-8 accuracy of a model with 5 outputs"),
        ({"early_stopping": EarlyStopping(monitor="val_loss")}, ValueError, "needs a val_loader"),
    ],
    ids=["loss-class", "topk-above-classes", "early-stopping-without-validation"],
)
def test_a_recipe_checks_what_fit_would_refuse_before_it_freezes_anything(
    tasks, recipe, options, error, message
):
    model = new_task_model()
    with pytest.raises(error, match=message):
        recipe(model, DataLoader(tasks.target_train, batch_size=256), **RUN[recipe], **options)
    assert all(p.requires_grad for p in model.parameters()), "nothing was frozen"


@pytest.mark.parametrize("recipe", [fine_tune, gradual_unfreeze])
def test_a_recipe_refuses_a_lora_model_whose_base_weights_it_would_unfreeze(tasks, recipe):
    model = new_task_model()
    add_lora(model, "block3.*", rank=2)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    with pytest.raises(ValueError, match=r"has LoRA adapters .*merge them first"):
        recipe(model, DataLoader(tasks.target_train, batch_size=256), **RUN[recipe])
    assert {name for name, p in model.named_parameters() if p.requires_grad} == trainable
