"""python -m ftlib finetune and predict, end to end on generated image folders: train, save,
reload, predict; under torchrun too; and a one-line error for each kind of bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ftlib.cli.architecture import load_finetuned
from ftlib.cli.images import ImageFiles, Preprocessing
from ftlib.cli.main import build_parser, main
from ftlib.cli.outputs import RUN_FILES
from ftlib.data import make_image_folder, torchvision_architecture
from ftlib.seeding import seed_everything
from ftlib.strategy import recommend
from ftlib.training import evaluate
from ftlib.training.checkpoint import save_checkpoint

# A small, quick run: random initial values, 32x32 images, one CPU thread.
QUICK = ["--model", "resnet18", "--weights", "none", "--image-size", "32", "--device", "cpu"]
QUICK += ["--workers", "0", "--batch-size", "8", "--lr", "1e-3", "--epochs", "2", "--no-progress"]
CLASSES = ["disk", "square", "triangle"]
PER_CLASS = 10


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("data") / "shapes", n_per_class=PER_CLASS)


@pytest.fixture(scope="module")
def full_run(images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "full"
    assert (
        main(["finetune", "--data", str(images), *QUICK, "--state", "full", "--out", str(out)]) == 0
    )
    return out


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def held_out(out: Path, split: str) -> list[tuple[Path, str]]:
    """The (image path, class) pairs of ``split`` that the run wrote to splits.json."""
    splits = json.loads((out / "splits.json").read_text())
    return [(Path(splits["root"]) / item["path"], item["class"]) for item in splits[split]]


def rerun_test_split(out: Path) -> dict[str, float]:
    """The test numbers of the model rebuilt from its checkpoint alone."""
    model, extra = load_finetuned(out / "checkpoint.pt")
    pairs = held_out(out, "test")
    transform = Preprocessing.from_dict(extra["preprocessing"]).evaluation()
    labels = [extra["classes"].index(name) for _, name in pairs]
    dataset = ImageFiles([path for path, _ in pairs], transform, labels)
    loader = DataLoader(dataset, batch_size=4)
    return evaluate(model, loader, device="cpu", topk=(1,), progress=False)


def body_state(state: dict[str, torch.Tensor], head: str = "fc.") -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in state.items() if not name.startswith(head)}


def initial_resnet18(seed: int = 0) -> dict[str, torch.Tensor]:
    """The random initial values a run with ``--seed`` starts from."""
    seed_everything(seed)
    return torchvision_architecture("resnet18").state_dict()


def test_finetune_writes_checkpoint_history_curves_splits_and_summary(full_run):
    assert sorted(path.name for path in full_run.iterdir()) == sorted(RUN_FILES)
    history = json.loads((full_run / "history.json").read_text())["epochs"]
    assert [record["epoch"] for record in history] == [1, 2]
    assert {"train_loss", "train_top1", "val_loss", "val_top1"} <= set(history[0])
    summary = summary_of(full_run)
    assert summary["data"]["classes"] == CLASSES
    assert summary["data"]["images"] == {"train": 18, "val": 6, "test": 6}
    assert summary["model"] == {
        "arch": "resnet18",
        "weights": None,
        "state": "full",
        "num_classes": 3,
        "freeze_first": 0,
    }
    assert summary["epochs_trained"] == 2 and summary["settings"]["processes"] == 1
    assert set(summary["test"]) == set(summary["validation"]) == {"loss", "top1"}
    assert (full_run / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_splits_are_stratified_disjoint_and_cover_the_folder(full_run, images):
    splits = {split: held_out(full_run, split) for split in ("train", "val", "test")}
    paths = [path for pairs in splits.values() for path, _ in pairs]
    assert len(paths) == len(set(paths)) == len(CLASSES) * PER_CLASS
    assert set(paths) == set(images.rglob("*.png"))
    for split, per_class in (("train", 6), ("val", 2), ("test", 2)):
        names = [name for _, name in splits[split]]
        assert all(names.count(name) == per_class for name in CLASSES), split
    for path, name in splits["test"]:
        assert path.parent.name == name


def test_checkpoint_rebuilds_the_model_that_was_scored(full_run):
    summary = summary_of(full_run)["test"]
    again = rerun_test_split(full_run)
    assert again["top1"] == summary["top1"]
    assert again["loss"] == pytest.approx(summary["loss"], rel=1e-5)


def test_training_changed_every_block_in_state_full(full_run):
    model, _ = load_finetuned(full_run / "checkpoint.pt")
    trained, initial = model.state_dict(), initial_resnet18()
    for name in ("conv1.weight", "layer1.0.conv1.weight", "layer4.1.conv2.weight"):
        assert not torch.equal(trained[name], initial[name]), name


def test_predict_labels_the_test_images_as_the_summary_scored_them(full_run, tmp_path):
    pairs = held_out(full_run, "test")
    table = tmp_path / "predictions.csv"
    command = ["predict", "--checkpoint", str(full_run / "checkpoint.pt"), "--top", "2"]
    assert (
        main([*command, "--no-progress", "--out", str(table), *map(str, (p for p, _ in pairs))])
        == 0
    )
    with table.open() as file:
        rows = list(csv.DictReader(file))
    assert [Path(row["path"]) for row in rows] == [path for path, _ in pairs]
    assert list(rows[0]) == ["path", "class", "probability", "class_2", "probability_2"]
    hits = [row["class"] == name for row, (_, name) in zip(rows, pairs, strict=True)]
    assert sum(hits) / len(hits) == summary_of(full_run)["test"]["top1"]
    for row in rows:
        first, second = float(row["probability"]), float(row["probability_2"])
        assert 1 >= first >= second >= 0 and row["class"] != row["class_2"]


def test_python_dash_m_ftlib_predicts_a_folder_to_the_terminal(full_run, images):
    done = subprocess.run(
        [sys.executable, "-m", "ftlib", "predict", "--checkpoint", str(full_run / "checkpoint.pt")]
        + [str(images / "disk"), "--no-progress", "--device", "cpu"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(done.stdout.splitlines()))
    assert sorted(Path(row["path"]) for row in rows) == sorted((images / "disk").glob("*.png"))
    assert {row["class"] for row in rows} <= set(CLASSES)


def test_state_head_trains_only_the_head_on_cached_features(images, tmp_path, capsys):
    out = tmp_path / "head"
    quick = [arg for arg in QUICK if arg != "--no-progress"]  # the bars go to stderr
    assert (
        main(["finetune", "--data", str(images), *quick, "--state", "head", "--out", str(out)]) == 0
    )
    assert "extract features" in capsys.readouterr().err
    summary = summary_of(out)
    assert summary["settings"]["cached_features"] is True and summary["epochs_trained"] == 2
    model, _ = load_finetuned(out / "checkpoint.pt")
    trained, initial = model.state_dict(), initial_resnet18()
    for name, tensor in body_state(initial).items():
        assert torch.equal(trained[name], tensor), name  # running statistics included
    assert trained["fc.weight"].shape == (3, 512)


def test_state_head_with_augmentation_trains_through_fit(images, tmp_path):
    out = tmp_path / "augmented"
    command = ["finetune", "--data", str(images), *QUICK, "--state", "head", "--augment"]
    assert main([*command, "--epochs", "1", "--out", str(out)]) == 0
    summary = summary_of(out)
    assert summary["settings"]["cached_features"] is False and summary["settings"]["augment"]


def test_state_auto_follows_recommend_for_the_training_images_per_class(images, tmp_path):
    out = tmp_path / "auto"
    command = ["finetune", "--data", str(images), *QUICK, "--state", "auto", "--different"]
    assert main([*command, "--epochs", "1", "--out", str(out)]) == 0
    summary = summary_of(out)
    plan = recommend(6, False, num_blocks=7)  # 6 training images per class; resnet18's blocks
    assert summary["plan"]["quadrant"] == plan.quadrant.value and plan.freeze_first == 3
    assert summary["plan"]["reason"] == plan.reason
    assert (summary["model"]["state"], summary["model"]["freeze_first"]) == ("full", 3)
    model, _ = load_finetuned(out / "checkpoint.pt")
    trained, initial = model.state_dict(), initial_resnet18()
    frozen = [name for name in initial if name.split(".")[0] in ("conv1", "bn1", "layer1")]
    assert frozen and all(torch.equal(trained[name], initial[name]) for name in frozen)
    assert not torch.equal(trained["layer2.0.conv1.weight"], initial["layer2.0.conv1.weight"])


def test_split_folders_are_used_as_given_and_a_missing_one_is_carved_from_train(tmp_path):
    root = tmp_path / "presplit"
    make_image_folder(root / "train", n_per_class=8, seed=1)
    make_image_folder(root / "test", n_per_class=3, seed=2)
    out = tmp_path / "run"
    command = ["finetune", "--data", str(root), *QUICK, "--state", "full", "--epochs", "1"]
    assert main([*command, "--out", str(out)]) == 0
    summary = summary_of(out)
    assert summary["data"]["split_folders"] == ["train", "test"]
    assert summary["data"]["images"] == {"train": 21, "val": 3, "test": 9}  # 15 % of 8 is 1
    assert {path.parent.parent.name for path, _ in held_out(out, "test")} == {"test"}
    assert {path.parent.parent.name for path, _ in held_out(out, "val")} == {"train"}


def test_finetune_under_torchrun_trains_on_two_processes_and_rank_zero_writes(images, tmp_path):
    out = tmp_path / "two"
    done = subprocess.run(
        [*torchrun(), "--standalone", "--nproc_per_node=2", "-m", "ftlib", "finetune"]
        + ["--data", str(images), *QUICK, "--state", "full", "--batch-size", "4"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("wrote ") == 1  # the report comes from rank 0 alone
    assert sorted(path.name for path in out.iterdir()) == sorted(RUN_FILES)
    summary = summary_of(out)
    assert summary["settings"]["processes"] == 2 and summary["epochs_trained"] == 2
    again = rerun_test_split(out)
    assert again["top1"] == summary["test"]["top1"]
    assert again["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-5)


def torchrun() -> list[str]:
    script = Path(sys.executable).with_name("torchrun")
    return [str(script)] if script.exists() else [sys.executable, "-m", "torch.distributed.run"]


# --- bad input: a message that names the problem and the way out, exit status 2, no files -


def error_of(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"python -m ftlib {argv[0]}: error: ")
    assert "Traceback" not in captured.err
    return captured.err


def test_a_missing_folder_is_named(capsys, tmp_path):
    err = error_of(
        capsys,
        "finetune",
        "--data",
        str(tmp_path / "nowhere"),
        *QUICK,
        "--state",
        "full",
        "--out",
        str(tmp_path / "out"),
    )
    assert "nowhere does not exist" in err and "make_image_folder" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ({}, "has no class sub-folders"),
        ({"disk": 5}, "has 1 class folder (disk); a classifier needs at least 2"),
        ({"disk": 5, "square": 0}, "class folders ['square'] in"),
        ({"disk": 2, "square": 2}, "class 'disk' has 2 training images, too few"),
    ],
)
def test_folders_without_enough_classes_or_images_are_refused(capsys, tmp_path, layout, expected):
    root = tmp_path / "data"
    root.mkdir()
    for name, count in layout.items():
        (root / name).mkdir()
        for index in range(count):
            Image.new("RGB", (8, 8)).save(root / name / f"{index}.png")
    err = error_of(
        capsys,
        "finetune",
        "--data",
        str(root),
        *QUICK,
        "--state",
        "full",
        "--out",
        str(tmp_path / "out"),
    )
    assert expected in err


def test_split_folders_with_other_classes_are_refused(capsys, tmp_path):
    make_image_folder(tmp_path / "data" / "train", n_per_class=4)
    make_image_folder(tmp_path / "data" / "val", classes=("disk", "square"), n_per_class=2)
    err = error_of(
        capsys,
        "finetune",
        "--data",
        str(tmp_path / "data"),
        *QUICK,
        "--state",
        "full",
        "--out",
        str(tmp_path / "out"),
    )
    assert "missing ['triangle']" in err and "every split needs a folder for each class" in err


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--model", "resnet19"],
            "unknown torchvision classification model 'resnet19'; close names: ['resnet18'",
        ),
        (["--weights", "IMAGENET"], "unknown weights 'IMAGENET' for resnet18; choose one of"),
        (
            ["--state", "predict"],
            "--state predict uses the pretrained model as it is, but --weights none",
        ),
        (["--state", "predict", "--weights", "DEFAULT"], "has 1000 classes"),
        (["--state", "auto"], "say which with --similar or --different"),
        (["--state", "head", "--freeze-first", "2"], "--freeze-first applies to --state full"),
        (["--state", "full", "--freeze-first", "9"], "freeze_first=9 is out of range"),
        (
            ["--model", "inception_v3", "--state", "full"],
            "inception_v3 needs images of at "
            "least 75x75 pixels, got an image size of 32; pass --image-size 75",
        ),
        (
            ["--state", "full", "--val-fraction", "0.5", "--test-fraction", "0.5"],
            "leave no images to train on",
        ),
        (["--state", "full", "--device", "cuda:7"], "device 'cuda:7'"),
    ],
)
def test_bad_settings_get_one_line_naming_them(capsys, images, tmp_path, options, expected):
    out = tmp_path / "out"
    command = ["finetune", "--data", str(images), *QUICK, "--state", "full", *options]
    err = error_of(capsys, *command, "--out", str(out))  # the later of two options counts
    assert expected in err
    assert not out.exists()


def test_missing_pretrained_weights_say_where_the_file_goes(capsys, images, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    err = error_of(
        capsys,
        "finetune",
        "--data",
        str(images),
        *QUICK,
        "--weights",
        "DEFAULT",
        "--state",
        "head",
        "--out",
        str(tmp_path / "out"),
    )
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert "not in the torch hub cache" in err and str(expected) in err
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in err
    assert not (tmp_path / "torch" / "hub").exists()  # nothing downloaded


def test_a_folder_holding_a_run_is_not_overwritten_unless_asked(capsys, images, full_run):
    before = (full_run / "checkpoint.pt").read_bytes()
    err = error_of(
        capsys, "finetune", "--data", str(images), *QUICK, "--state", "full", "--out", str(full_run)
    )
    assert "already holds a run (checkpoint.pt" in err and "--overwrite" in err
    assert (full_run / "checkpoint.pt").read_bytes() == before


def test_arguments_out_of_range_are_refused_by_the_parser(capsys, images, tmp_path):
    with pytest.raises(SystemExit) as caught:
        main(["finetune", "--data", str(images), *QUICK, "--epochs", "0", "--out", str(tmp_path)])
    assert caught.value.code == 2
    assert "argument --epochs: 0 is below 1" in capsys.readouterr().err


def test_predict_refuses_what_it_cannot_read(capsys, full_run, tmp_path):
    checkpoint = str(full_run / "checkpoint.pt")
    other = save_checkpoint(torch.nn.Linear(2, 3), tmp_path / "plain.pt")
    err = error_of(capsys, "predict", "--checkpoint", str(other), str(tmp_path))
    assert "not one written by python -m ftlib finetune" in err
    err = error_of(capsys, "predict", "--checkpoint", checkpoint, str(tmp_path / "gone.png"))
    assert f"no image file or folder {tmp_path / 'gone.png'}" in err
    (tmp_path / "notes.txt").write_text("not an image")
    err = error_of(capsys, "predict", "--checkpoint", checkpoint, str(tmp_path / "notes.txt"))
    assert "notes.txt is not an image file" in err
    (tmp_path / "empty").mkdir()
    err = error_of(capsys, "predict", "--checkpoint", checkpoint, str(tmp_path / "empty"))
    assert "holds no images" in err
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    err = error_of(
        capsys, "predict", "--checkpoint", checkpoint, "--no-progress", str(tmp_path / "broken.png")
    )
    assert "cannot read the image" in err and "broken.png" in err


def test_help_answers_without_importing_torch():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, ftlib.cli.main as m; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"


def test_finetune_help_shows_states_torchrun_and_where_weights_live(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["finetune", "--help"])
    text = capsys.readouterr().out
    assert caught.value.code == 0
    for needed in ("predict", "head", "full", "auto", "--similar", "torchrun", "hub/checkpoints"):
        assert needed in text, needed


def test_every_command_in_the_readme_parses():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    lines = [line for block in blocks for line in block.splitlines() if "-m ftlib " in line]
    commands = [line.split("-m ftlib ", 1)[1] for line in lines]
    assert {line.split()[0] for line in commands} == {"finetune", "predict"}
    for command in commands:
        build_parser().parse_args(shlex.split(command))  # exits 2 on an unknown option
