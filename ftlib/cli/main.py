"""``python -m ftlib``: the parser of the two commands, and what each prints.

The commands' work is done by ``ftlib.cli.finetune`` and ``ftlib.cli.predict``, which return
data; this module turns the arguments into their settings and their results into lines on
the terminal. Torch is imported only once a command runs, so ``--help`` answers at once.
A mistake in the input (a missing folder, an unknown model, too few images) ends the command
with one line naming it and what to do, and exit status 2; anything else is a bug and shows
its traceback.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_PROG = "python -m ftlib"

_FINETUNE_DESCRIPTION = """\
Train a torchvision classifier on the images in DIR, in one of the three states:
  predict  the pretrained model as it is (DIR's classes must be its classes)
  head     a new head on the frozen pretrained body (without --augment on one process, the
           body's features are computed once: ftlib.fit_head_cached)
  full     everything trains (--freeze-first K keeps the first K blocks frozen)
  auto     the state ftlib.recommend plans for the training images per class and for
           whether they look like the pretraining data (--similar or --different)
A validation split is measured after every epoch and the test split once, at the end. The
output folder gets checkpoint.pt, history.json, training_curves.png, splits.json, summary.json.
"""

_PREDICT_DESCRIPTION = """\
Predict the classes of images (files, or folders searched recursively) with a checkpoint
written by finetune, as CSV: path, class, probability (and class_2, probability_2, ... with
--top).
"""

_FINETUNE_EXAMPLES = """\
examples:
  python -m ftlib finetune --data photos --model resnet18 --state auto --similar --out runs/r18
  python -m ftlib finetune --data photos --model mobilenet_v3_small --state full \\
      --freeze-first 2 --epochs 10 --lr 3e-4 --augment --out runs/mnv3
  torchrun --nproc_per_node=2 -m ftlib finetune --data photos --model resnet50 --state full \\
      --out runs/r50          # 2 processes (GPUs, or CPU cores), each half of every epoch

DIR holds one folder per class (DIR/<class>/<image>), or DIR/train, DIR/val and DIR/test
laid out so. Pretrained weights are read from the torch hub cache ($TORCH_HOME/hub/checkpoints,
by default ~/.cache/torch/hub/checkpoints) and never downloaded: a missing file is reported
with the path to put it at and the address to get it from.
"""

_PREDICT_EXAMPLES = """\
examples:
  python -m ftlib predict --checkpoint runs/r18/checkpoint.pt new_photos/
  python -m ftlib predict --checkpoint runs/r18/checkpoint.pt a.jpg b.png --top 3 --out p.csv
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples kept as written; a default shown where there is one to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unshown = action.default is None or isinstance(action.default, bool)
        if unshown or action.default == argparse.SUPPRESS or "default" in text:
            return text
        return text + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m ftlib`` and its commands ``finetune`` and ``predict``."""
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Fine-tune a torchvision classifier on your images, and use it.",
        epilog=f"Run '{_PROG} COMMAND --help' for the options of a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_finetune(commands)
    _add_predict(commands)
    return parser


def _add_finetune(commands: Any) -> None:
    finetune = commands.add_parser(
        "finetune",
        help="train a classifier on a folder of images and write it to an output folder",
        description=_FINETUNE_DESCRIPTION,
        epilog=_FINETUNE_EXAMPLES,
        formatter_class=_Formatter,
    )
    what = finetune.add_argument_group("what to train")
    what.add_argument("--data", type=Path, required=True, metavar="DIR", help="the image folder")
    what.add_argument(
        "--model",
        required=True,
        metavar="NAME",
        help="a torchvision classifier: resnet18, mobilenet_v3_small, efficientnet_b0, "
        "convnext_tiny, vit_b_16, ... (torchvision.models.list_models())",
    )
    what.add_argument(
        "--weights",
        default="DEFAULT",
        type=_weights,
        metavar="NAME",
        help="pretrained weights: DEFAULT (the best), a name such as IMAGENET1K_V1, or none "
        "for random initial values",
    )
    what.add_argument(
        "--state",
        default="auto",
        choices=("predict", "head", "full", "auto"),
        help="what trains; auto follows ftlib.recommend for the training images per class "
        "and --similar/--different",
    )
    likeness = what.add_mutually_exclusive_group()
    likeness.add_argument(
        "--similar",
        dest="similar",
        action="store_true",
        default=None,
        help="for --state auto: the images look like the pretraining data (ImageNet photos)",
    )
    likeness.add_argument(
        "--different",
        dest="similar",
        action="store_false",
        help="for --state auto: they do not (medical scans, drawings, satellite images, ...)",
    )
    what.add_argument(
        "--freeze-first",
        type=_count(0),
        metavar="K",
        help="for --state full: keep the first K top-level blocks frozen (default: none)",
    )
    how = finetune.add_argument_group("how to train")
    how.add_argument(
        "--epochs", type=_count(1), metavar="N", default=5, help="passes over the training set"
    )
    how.add_argument(
        "--lr",
        type=_positive_float,
        default=1e-4,
        help="the body's learning rate (AdamW); the new head learns 10x faster",
    )
    how.add_argument(
        "--batch-size",
        type=_count(1),
        default=32,
        metavar="N",
        help="images per step (per process)",
    )
    how.add_argument(
        "--image-size",
        type=_count(1),
        metavar="PIXELS",
        help="side of the square images the model sees (default: the weights' own, mostly 224)",
    )
    how.add_argument(
        "--augment",
        action="store_true",
        help="random resized crops and flips while training (state head then cannot cache "
        "the frozen body's features)",
    )
    how.add_argument(
        "--patience",
        type=_count(1),
        metavar="EPOCHS",
        help="stop once the validation loss has not improved for this many epochs, and keep "
        "the best epoch's weights (default: train every epoch)",
    )
    how.add_argument(
        "--seed", type=_count(0), metavar="N", default=0, help="fixes splits, init and order"
    )
    held = finetune.add_argument_group("held-out images (for DIR/<class>/<image>)")
    held.add_argument(
        "--val-fraction",
        type=float,
        default=0.15,
        metavar="F",
        help="share of each class for validation",
    )
    held.add_argument(
        "--test-fraction",
        type=float,
        default=0.15,
        metavar="F",
        help="share of each class for the test",
    )
    where = finetune.add_argument_group("where and how fast")
    _add_device(where)
    where.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "bf16", "fp16", "off"),
        help="mixed precision: auto is bf16 (or fp16 with loss scaling) on a GPU, off on a CPU",
    )
    where.add_argument(
        "--channels-last", action="store_true", help="NHWC memory layout (faster on GPUs)"
    )
    _add_workers(where, default=2)
    out = finetune.add_argument_group("outputs")
    out.add_argument("--out", type=Path, required=True, metavar="DIR", help="the output folder")
    out.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    _add_progress(out)


def _add_predict(commands: Any) -> None:
    predict = commands.add_parser(
        "predict",
        help="label images with a model written by finetune",
        description=_PREDICT_DESCRIPTION,
        epilog=_PREDICT_EXAMPLES,
        formatter_class=_Formatter,
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    predict.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        metavar="FILE",
        help="checkpoint.pt of a finetune run",
    )
    predict.add_argument(
        "--top",
        type=_count(1),
        default=1,
        metavar="K",
        help="how many classes per image, most likely first",
    )
    predict.add_argument(
        "--out", type=Path, metavar="CSV", help="write the CSV here (default: the terminal)"
    )
    predict.add_argument(
        "--batch-size", type=_count(1), default=64, metavar="N", help="images per batch"
    )
    _add_workers(predict, default=0)
    _add_device(predict)
    _add_progress(predict)


def _add_workers(group: Any, *, default: int) -> None:
    group.add_argument(
        "--workers",
        type=_count(0),
        default=default,
        metavar="N",
        help="processes decoding images (0: none)",
    )


def _add_device(group: Any) -> None:
    group.add_argument(
        "--device",
        help="cpu, cuda, cuda:1, mps (default: the best there is; FTLIB_DEVICE overrides)",
    )


def _add_progress(group: Any) -> None:
    group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m ftlib`` with ``argv`` (None: the command line); the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "finetune":
            _finetune(args)
        else:
            _predict(args)
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"{_PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output went to a reader that stopped early (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
    return 0


def _finetune(args: argparse.Namespace) -> None:
    from ftlib.cli.finetune import FinetuneSettings, run_finetune
    from ftlib.training import distributed

    options = {key: value for key, value in vars(args).items() if key != "command"}
    summary = run_finetune(FinetuneSettings(**options))
    if distributed.current_world().is_main:
        print(finetune_report(summary))


def finetune_report(summary: dict[str, Any]) -> str:
    """What a finished ``finetune`` run tells the learner: data, state, numbers, files."""
    data, model, plan = summary["data"], summary["model"], summary["plan"]
    images = data["images"]
    lines = [
        f"data: {len(data['classes'])} classes ({_some(data['classes'])}); "
        f"{images['train']} training, {images['val']} validation, {images['test']} test images",
        f"model: {model['arch']} from {model['weights'] or 'random weights'}, state "
        f"{model['state']}"
        + (f", first {model['freeze_first']} blocks frozen" if model["freeze_first"] else ""),
    ]
    if plan is not None:
        lines.append(f"plan ({plan['quadrant']}): {plan['reason']}")
    trained, settings = summary["epochs_trained"], summary["settings"]
    where = f"on {settings['device']}" + (
        f" x {settings['processes']} processes" if settings["processes"] > 1 else ""
    )
    if trained:
        cached = " (cached features)" if settings["cached_features"] else ""
        epochs = f"{trained} epoch{'s' if trained > 1 else ''}"
        lines.append(f"trained {epochs} {where}{cached} in {summary['seconds']:.1f} s")
    else:
        lines.append(f"no training (state predict), measured {where}")
    for split in ("validation", "test"):
        metrics = ", ".join(f"{key} {value:.4f}" for key, value in summary[split].items())
        lines.append(f"{split}: {metrics}")
    files = summary["files"]
    lines.append(f"wrote {settings['out']}: {', '.join(Path(f).name for f in files.values())}")
    lines.append(f"next: {_PROG} predict --checkpoint {files['checkpoint']} IMAGE_OR_FOLDER ...")
    return "\n".join(lines)


def _some(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (
        f", ... ({len(names) - shown} more)" if len(names) > shown else ""
    )


def _predict(args: argparse.Namespace) -> None:
    from ftlib.cli.predict import predict_images

    rows = predict_images(
        args.checkpoint,
        args.images,
        top=args.top,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        progress=args.progress,
    )
    if args.out is None:
        _write_csv(rows, sys.stdout)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as file:
        _write_csv(rows, file)
    print(f"wrote {len(rows)} predictions to {args.out}", file=sys.stderr)


def _write_csv(rows: list[dict[str, Any]], file: Any) -> None:
    writer = csv.DictWriter(file, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})


def _weights(value: str) -> str | None:
    return None if value.lower() == "none" else value


def _count(minimum: int) -> Any:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{number} is below {minimum}")
        return number

    return parse


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not a positive, finite number")
    return number
