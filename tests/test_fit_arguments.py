"""Bad arguments to fit, evaluate and predict: each gets a clear error before any weight changes."""

import numpy as np
import PIL.Image
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from ftlib.training import EarlyStopping, Performance, evaluate, fit, predict
from ftlib.training.batches import declared_targets

IMAGES = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
LABELS = torch.arange(16) % 4
DATA = TensorDataset(IMAGES, LABELS)


def convnet():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(144, 4))


def loader(dataset=DATA):
    return DataLoader(dataset, batch_size=8)


def sgd_of(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


def fit_quietly(model, train_loader, **options):
    return fit(model, train_loader, **{"epochs": 1, "device": "cpu", "progress": False, **options})


def bad_fit_cases():
    other = sgd_of(convnet())
    return {
        "dataset-not-loader": (lambda m: {"train_loader": DATA}, TypeError, "a dataset of single"),
        "tensor-not-loader": (lambda m: {"train_loader": IMAGES}, TypeError, "tensor of shape"),
        "val-dataset": (
            lambda m: {"val_loader": DATA},
            TypeError,
            r"val_loader is a TensorDataset.*DataLoader\(dataset",
        ),
        "samples-not-batches": (
            lambda m: {"train_loader": [DATA[i] for i in range(4)]},
            ValueError,
            r"yields single samples, not batches: wrap the dataset in .*DataLoader",
        ),
        "epochs-float": (lambda m: {"epochs": 2.0}, ValueError, "epochs must be a positive"),
        "optimizer-class": (
            lambda m: {"optimizer": torch.optim.Adam},
            TypeError,
            r"optimizer is the class Adam.*model\.parameters\(\)",
        ),
        "optimizer-of-another-model": (
            lambda m: {"optimizer": other},
            ValueError,
            "holds none of the trainable parameters",
        ),
        "loss-class": (
            lambda m: {"loss_fn": nn.CrossEntropyLoss},
            TypeError,
            r"loss_fn=nn.CrossEntropyLoss\(\)",
        ),
        "loss-not-reduced": (
            lambda m: {"loss_fn": per_sample_losses},
            ValueError,
            r"0-dim tensor, got shape \(8,\); use reduction='mean'",
        ),
        "topk-int": (lambda m: {"topk": 5}, ValueError, r"single number 5; use topk=\(5,\)"),
        "topk-above-classes": (
            lambda m: {"topk": (1, 10)},
            ValueError,
            r"top-10 accuracy of a model with 4 outputs.*topk=\(1,\)",
        ),
        "scheduler-class": (
            lambda m: {"optimizer": sgd_of(m), "scheduler": torch.optim.lr_scheduler.StepLR},
            TypeError,
            "scheduler is the class StepLR",
        ),
        "scheduler-of-another-optimizer": (
            lambda m: {
                "optimizer": sgd_of(m),
                "scheduler": torch.optim.lr_scheduler.StepLR(other, 1),
            },
            ValueError,
            "drives another optimizer",
        ),
        "scheduler-without-optimizer": (
            lambda m: {"scheduler": torch.optim.lr_scheduler.StepLR(sgd_of(m), 1)},
            ValueError,
            "needs the optimizer it schedules",
        ),
        "one-cycle-too-short": (
            lambda m: one_cycle(m, total_steps=3, epochs=2),
            ValueError,
            "has 3 steps but this run takes 4 optimizer steps",
        ),
        "performance-dict": (
            lambda m: {"performance": {"channels_last": True}},
            TypeError,
            r"performance=ftlib.Performance\(channels_last=True\)",
        ),
        "early-stopping-class": (
            lambda m: {"early_stopping": EarlyStopping},
            TypeError,
            "early_stopping is the class EarlyStopping",
        ),
        "early-stopping-unrecorded-key": (
            lambda m: {"val_loader": loader(), "early_stopping": EarlyStopping(monitor="loss")},
            ValueError,
            r"'loss', which this run does not record; it records \['train_loss'",
        ),
        "uint8-images": (
            lambda m: {
                "train_loader": loader(TensorDataset((IMAGES * 50).to(torch.uint8), LABELS))
            },
            ValueError,
            r"torch.uint8 but the model's weights are torch.float32; scale them",
        ),
        "float64-images": (
            lambda m: {"train_loader": loader(TensorDataset(IMAGES.double(), LABELS))},
            ValueError,
            r"images.to\(torch.float32\)",
        ),
        "grey-images": (
            lambda m: {"train_loader": loader(TensorDataset(IMAGES[:, :1], LABELS))},
            ValueError,
            r"takes 3 channels, but the images have 1.*Grayscale\(num_output_channels=3\)",
        ),
        "text-inputs": (
            lambda m: {"train_loader": [(["an image"] * 8, LABELS[:8])]},
            ValueError,
            "a list of str, not a tensor",
        ),
        "checkpoint-folder": (
            lambda m: {"checkpoint": "."},
            ValueError,
            r"checkpoint='\.' is a folder",
        ),
    }


def per_sample_losses(logits, targets):
    return nn.functional.cross_entropy(logits, targets, reduction="none")


def one_cycle(model, *, total_steps, epochs):
    optimizer = sgd_of(model)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=total_steps)
    return {
        "optimizer": optimizer,
        "scheduler": schedule,
        "scheduler_step": "step",
        "epochs": epochs,
    }


@pytest.mark.parametrize("case", list(bad_fit_cases()))
def test_a_bad_argument_is_refused_before_any_weight_changes(case):
    options, error, message = bad_fit_cases()[case]
    model = convnet()
    before = [p.detach().clone() for p in model.parameters()]
    arguments = {"train_loader": loader(), **options(model)}
    with pytest.raises(error, match=message):
        fit_quietly(model, **arguments)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_model_given_by_name_is_refused_with_how_to_build_it():
    with pytest.raises(TypeError, match=r"get_model\('resnet18'\)"):
        fit_quietly("resnet18", loader())


def test_a_numpy_epoch_count_is_a_count():
    assert len(fit_quietly(convnet(), loader(), epochs=np.int64(2))) == 2


def test_top5_of_the_default_is_kept_with_few_classes_but_an_explicit_k_must_fit():
    assert "train_top5" in fit_quietly(convnet(), loader()).last
    assert "train_top4" in fit_quietly(convnet(), loader(), topk=(4,)).last
    with pytest.raises(ValueError, match="top-5 accuracy of a model with 4 outputs"):
        evaluate(convnet(), loader(), topk=(5,), device="cpu", progress=False)


def test_an_optimizer_without_the_new_head_warns_that_the_head_will_not_learn():
    model = convnet()
    optimizer = torch.optim.SGD(model[0].parameters(), lr=0.1)  # built before the head existed
    with pytest.warns(UserWarning, match=r"2 trainable parameters .* \(e.g. 2.weight, 2.bias\)"):
        fit_quietly(model, loader(), optimizer=optimizer)


@pytest.mark.parametrize("function", [evaluate, predict])
def test_evaluate_and_predict_refuse_a_dataset_and_a_name(function):
    with pytest.raises(TypeError, match="loader is a TensorDataset"):
        function(convnet(), DATA, device="cpu", progress=False)
    with pytest.raises(TypeError, match=f"{function.__name__} needs an nn.Module"):
        function("resnet18", loader(), device="cpu", progress=False)


def test_a_logit_map_is_refused_with_what_a_classifier_returns():
    with pytest.raises(ValueError, match=r"logits of shape \(8, 4, 8, 8\).*\(batch, classes\)"):
        fit_quietly(nn.Conv2d(3, 4, 1), loader())


def test_a_bad_label_in_the_last_batch_is_found_before_the_first_step():
    labels = LABELS.clone()
    labels[-1] = 9
    model = convnet()
    before = [p.detach().clone() for p in model.parameters()]
    data = DataLoader(TensorDataset(IMAGES, labels), batch_size=4)  # 9 is in the last batch
    with pytest.raises(ValueError, match=r"target 9 \(in the training set, found before any"):
        fit_quietly(model, data)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_declared_targets_read_subsets_and_pass_through_the_target_transform():
    nested = Subset(Subset(DATA, [3, 5, 7, 9]), [1, 3])  # samples 5 and 9
    assert declared_targets(DataLoader(nested)).tolist() == [LABELS[5].item(), LABELS[9].item()]
    assert declared_targets([(IMAGES, LABELS)]) is None

    class Relabelled(torch.utils.data.Dataset):
        targets = [0, 1]
        target_transform = staticmethod(lambda label: label + 10)

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return IMAGES[index], self.target_transform(self.targets[index])

    assert declared_targets(DataLoader(Relabelled())).tolist() == [10, 11]
    Relabelled.target_transform = staticmethod(lambda label: torch.eye(2)[label])  # one-hot
    assert declared_targets(DataLoader(Relabelled())) is None


def test_a_performance_object_is_still_accepted():
    history = fit_quietly(convnet(), loader(), performance=Performance(channels_last=True))
    assert len(history) == 1


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_a_loss_that_is_not_the_batch_mean_is_refused_up_front(reduction):
    with pytest.raises(
        ValueError, match=f"reduction='{reduction}', but fit needs the batch's mean"
    ):
        fit_quietly(convnet(), loader(), loss_fn=nn.CrossEntropyLoss(reduction=reduction))


@pytest.mark.parametrize(
    ("images", "hint"),
    [
        (IMAGES.permute(0, 2, 3, 1), r"channels last .* images.permute\(0, 3, 1, 2\)"),
        (IMAGES[:, 0], r"no channel dimension .* images.unsqueeze\(1\).expand\(-1, 3, -1, -1\)"),
        (torch.cat([IMAGES, IMAGES[:, :1]], 1), r"have 4 .* drop the alpha channel"),
    ],
    ids=["channels-last", "no-channel-dimension", "rgba"],
)
def test_images_in_another_layout_get_the_conversion_they_need(images, hint):
    with pytest.raises(ValueError, match=f"first layer takes 3 channels, but .*{hint}"):
        fit_quietly(convnet(), loader(TensorDataset(images, LABELS)))


def test_a_bad_label_in_the_validation_set_is_found_before_the_first_step():
    labels = LABELS.clone()
    labels[-1] = 7
    model = convnet()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"target 7 \(in the validation set, found before any"):
        fit_quietly(model, loader(), val_loader=loader(TensorDataset(IMAGES, labels)))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_subset_with_tensor_indices_trains_and_its_labels_are_read():
    chosen = torch.randperm(16, generator=torch.Generator().manual_seed(3))[:8]
    subset = Subset(DATA, chosen)
    assert declared_targets(DataLoader(subset)).tolist() == LABELS[chosen].tolist()
    assert len(fit_quietly(convnet(), loader(subset))) == 1


@pytest.mark.parametrize(
    ("kind", "length", "effect"),
    [
        ("one-cycle", 20, "never comes down to its final value; build it with total_steps=4"),
        ("cosine", 2, "climbs back up after its minimum; build it with T_max=4"),
    ],
)
def test_a_schedule_of_another_length_than_the_run_warns(kind, length, effect):
    model = convnet()
    optimizer = sgd_of(model)
    schedule = (
        torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=length)
        if kind == "one-cycle"
        else torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=length)
    )
    with pytest.warns(UserWarning, match=effect):
        fit_quietly(
            model,
            loader(),
            epochs=2,
            optimizer=optimizer,
            scheduler=schedule,
            scheduler_step="step",
        )


def test_a_generator_used_up_after_one_epoch_is_named():
    batches = (batch for batch in loader())
    with pytest.raises(ValueError, match="no batches in epoch 2: it is an iterator"):
        fit_quietly(convnet(), batches, epochs=2)


class Images(torch.utils.data.Dataset):
    """Samples as a dataset without a tensor transform gives them: PIL images, or tensors of
    several sizes."""

    def __init__(self, kind):
        self.kind = kind

    def __len__(self):
        return 4

    def __getitem__(self, index):
        if self.kind == "pil":
            return PIL.Image.new("RGB", (8, 8)), index % 4
        return torch.zeros(3, 8 + index, 8), index % 4


@pytest.mark.parametrize(
    ("kind", "error", "hint"),
    [
        ("pil", TypeError, r"returns PIL images.*transforms.ToImage\(\)"),
        ("mixed-sizes", RuntimeError, r"different sizes .* transforms.Resize\(\(224, 224\)\)"),
    ],
)
def test_samples_a_loader_cannot_batch_get_the_transform_they_need(kind, error, hint):
    with pytest.raises(error, match=hint):
        fit_quietly(convnet(), DataLoader(Images(kind), batch_size=2))
    with pytest.raises(error, match=hint):
        predict(convnet(), DataLoader(Images(kind), batch_size=2), device="cpu", progress=False)


def test_a_negative_label_mentions_losses_that_ignore_it():
    labels = LABELS.clone()
    labels[0] = -100
    with pytest.raises(ValueError, match=r"target -100 .*\(ignore_index=-100\) need your own loss"):
        fit_quietly(convnet(), loader(TensorDataset(IMAGES, labels)))


def test_resume_from_the_checkpoint_being_written_starts_afresh_when_it_is_missing(tmp_path):
    run = tmp_path / "run.pt"
    first = fit_quietly(convnet(), loader(), epochs=1, checkpoint=run, resume=run)
    again = fit_quietly(convnet(), loader(), epochs=2, checkpoint=run, resume=run)
    assert len(first) == 1 and again.epochs[0] == first.epochs[0] and len(again) == 2
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        fit_quietly(convnet(), loader(), resume=tmp_path / "other.pt")


def test_a_zero_learning_rate_warns_that_nothing_will_change():
    with pytest.warns(UserWarning, match="lr=0: the default optimizer will not change any weight"):
        fit_quietly(convnet(), loader(), lr=0)


def test_a_rate_given_with_an_optimizer_warns_that_it_is_not_used():
    model = convnet()
    with pytest.warns(UserWarning, match="lr are for fit's default optimizer and not used"):
        fit_quietly(model, loader(), optimizer=sgd_of(model), lr=0.5)
