"""GPU check: every CUDA path of ftlib on one GPU, and mixed precision against float32.

The checks, each of which must hold (the script exits 1 if one does not):

- ``device``: ``best_device`` picks the GPU and ``amp_dtype`` the precision it has natively;
- ``non_blocking_copies``: pinned batches from a DataLoader reach the GPU intact through
  ``to_device``'s non-blocking copies;
- ``autocast_bf16``, ``autocast_fp16_scaler``: ``autocast`` computes in the asked dtype, the
  gradient scaler is on for float16 only (and scales), and ``fit(amp=...)`` learns a task;
- ``channels_last``: ``Performance(channels_last=True)`` stores the weights NHWC and trains;
- ``cached_features``: ``fit_head_cached`` on the GPU trains the head ``fit`` trains;
- ``fit_end_to_end``: ``fit`` with validation and a run checkpoint, resumed for one more epoch
  as the uninterrupted run, then ``evaluate`` and ``predict`` agreeing with it;
- ``cli``: ``python -m ftlib finetune`` and ``predict`` on a generated image folder on the GPU.

Then the throughput of training a ResNet-50 (random weights, random 224x224 images already on
the GPU, so nothing is downloaded and the data loader is not measured) with ``fit`` in float32,
bfloat16 and float16 (loss scaling), each in the default and the channels-last layout: images
per second over the epochs after the first (warm-up), and each speed-up against float32.

    .venv/bin/python bench/gpu_check.py            # one GPU, < 5 min: results/gpu_check.json
    .venv/bin/python bench/gpu_check.py --dry-run  # the CPU at tiny sizes: all but CUDA itself

The dry run exercises the same code on the CPU (whose autocast has bfloat16 and float16, and
whose gradient scaler works alike), without pinned memory, with a ResNet-18 for the throughput
(a CPU takes minutes over a ResNet-50), and writes a file only with --out.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torchvision
from machine import describe_machine, write_results
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ftlib.cli.finetune import FinetuneSettings, run_finetune
from ftlib.cli.predict import predict_images
from ftlib.data import make_image_folder, render_shapes
from ftlib.device import amp_dtype, autocast, best_device, grad_scaler, to_device
from ftlib.models.small_cnn import SmallCNN
from ftlib.seeding import seed_everything
from ftlib.surgery.states import prepare
from ftlib.training import Performance, evaluate, fit, predict
from ftlib.training.caching import fit_head_cached

RESULTS = Path(__file__).parent / "results" / "gpu_check.json"
SHAPES = ("disk", "square", "triangle")
PRECISIONS = {"fp32": False, "bf16": "bf16", "fp16": "fp16"}
"""Throughput variants: name -> ``fit(amp=...)``."""


@dataclass(frozen=True)
class Sizes:
    """How large each part runs: full size on a GPU, tiny for the dry run on a CPU."""

    throughput_model: str
    throughput_image: int
    throughput_batch: int
    throughput_steps: int
    throughput_epochs: int  # the first one warms up (cuDNN's choices, caching allocator)
    images_per_class: int
    image: int
    epochs: int
    min_val_top1: float  # what the small task must reach; 0 in the dry run (too few epochs)


GPU = Sizes("resnet50", 224, 128, 20, 3, 96, 32, 6, 0.8)
DRY = Sizes("resnet18", 16, 2, 1, 2, 8, 32, 2, 0.0)


class CheckFailed(AssertionError):
    """A behaviour the check expects did not happen."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def shapes_loaders(sizes: Sizes, batch_size: int = 32) -> tuple[DataLoader, DataLoader]:
    """A learnable three-class task of generated shapes: shuffled training, in-order validation."""
    train = render_shapes(SHAPES, sizes.images_per_class, seed=0, size=sizes.image)
    val = render_shapes(SHAPES, max(sizes.images_per_class // 4, 2), seed=1, size=sizes.image)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=seed_everything(0)),
        DataLoader(val, batch_size=batch_size),
    )


def train_small(device: torch.device, sizes: Sizes, **options: Any) -> dict[str, Any]:
    """SmallCNN trained on the shapes task with ``fit``; its history and final numbers."""
    train, val = shapes_loaders(sizes)
    model = SmallCNN(num_classes=len(SHAPES), in_channels=3)
    history = fit(
        model,
        train,
        epochs=sizes.epochs,
        lr=3e-3,
        val_loader=val,
        device=device,
        topk=(1,),
        progress=False,
        **options,
    )
    losses = history.column("train_loss")
    expect(all(torch.isfinite(torch.tensor(losses))), f"non-finite training loss: {losses}")
    top1 = history.last["val_top1"]
    expect(top1 >= sizes.min_val_top1, f"validation top-1 {top1:.3f} < {sizes.min_val_top1}")
    return {"model": model, "train_loss": losses, "val_top1": top1}


def check_device(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    chosen = best_device()
    expect(chosen.type == device.type, f"best_device() chose {chosen}, expected {device.type}")
    dtype = amp_dtype(chosen)
    if device.type == "cuda":
        expect(dtype in (torch.bfloat16, torch.float16), f"amp_dtype on a GPU is {dtype}")
        return {
            "name": torch.cuda.get_device_name(device),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(device))),
            "memory_gib": torch.cuda.get_device_properties(device).total_memory / 2**30,
            "amp_dtype": str(dtype),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        }
    expect(dtype is None, f"amp_dtype on {device} is {dtype}, expected None (float32)")
    return {"name": str(device), "amp_dtype": str(dtype)}


def check_non_blocking_copies(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    pinned = device.type == "cuda"  # pinned memory needs an accelerator
    data = TensorDataset(torch.randn(64, 3, 8, 8), torch.arange(64))
    loader = DataLoader(data, batch_size=16, pin_memory=pinned)
    for inputs, targets in loader:
        expect(inputs.is_pinned() == pinned, f"batch pinned: {inputs.is_pinned()}")
        moved_inputs, moved_targets = to_device((inputs, targets), device)  # non-blocking
        synchronize(device)
        expect(moved_inputs.device.type == device.type, f"moved to {moved_inputs.device}")
        expect(torch.equal(moved_inputs.cpu(), inputs), "a non-blocking copy changed the data")
        expect(torch.equal(moved_targets.cpu(), targets), "targets changed on the way")
    return {"pinned": pinned, "batches": len(loader)}


def check_autocast(dtype: torch.dtype) -> Callable[[torch.device, Sizes], dict[str, Any]]:
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]

    def check(device: torch.device, sizes: Sizes) -> dict[str, Any]:
        layer = nn.Linear(8, 4).to(device)
        with autocast(device, dtype=dtype):
            output = layer(torch.randn(2, 8, device=device))
        expect(output.dtype == dtype, f"autocast computed in {output.dtype}, not {dtype}")
        scaler = grad_scaler(device, dtype=dtype)
        scaled = scaler.scale(torch.ones((), device=device)).item()
        expect(scaler.is_enabled() == (dtype == torch.float16), "scaler on for float16 only")
        expect((scaled > 1) == (dtype == torch.float16), f"the scaler scaled 1 to {scaled}")
        run = train_small(device, sizes, amp=name)
        return {
            "output_dtype": str(output.dtype),
            "scaler_enabled": scaler.is_enabled(),
            "loss_scale": scaled,
            "train_loss": run["train_loss"],
            "val_top1": run["val_top1"],
        }

    return check


def check_channels_last(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    run = train_small(device, sizes, performance=Performance(channels_last=True))
    convs = [m.weight for m in run["model"].modules() if isinstance(m, nn.Conv2d)]
    nhwc = [w.is_contiguous(memory_format=torch.channels_last) for w in convs]
    expect(all(nhwc), f"{nhwc.count(False)} of {len(convs)} convolutions are not channels-last")
    return {
        "convolutions": len(convs),
        "train_loss": run["train_loss"],
        "val_top1": run["val_top1"],
    }


@contextmanager
def full_float32() -> Iterator[None]:
    """No TF32 inside: the cached and the plain run must differ by rounding alone."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check_cached_features(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=len(SHAPES))
    prepare(model, "head")
    twin = copy.deepcopy(model)
    runs = {}
    with full_float32():
        for name, net, train in (("cached", model, fit_head_cached), ("fit", twin, fit)):
            loader, _ = shapes_loaders(sizes, batch_size=16)  # the same shuffling for both
            # SGD: each step moves by the gradient, so rounding stays rounding (AdamW's
            # normalised steps would blow up the noise of gradients near zero).
            optimizer = torch.optim.SGD(net.fc.parameters(), lr=0.05, momentum=0.9)
            runs[name] = train(
                net,
                loader,
                epochs=sizes.epochs,
                optimizer=optimizer,
                device=device,
                amp=False,
                topk=(1,),
                progress=False,
            )
    difference = (model.fc.weight - twin.fc.weight).abs().max().item()
    expect(difference < 1e-3, f"the cached head differs from fit's by {difference:.2e}")
    seconds = {name: sum(history.column("seconds")) for name, history in runs.items()}
    return {"largest_head_difference": difference, "seconds": seconds}


def check_fit_end_to_end(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "run.pt"
        seed_everything(0)
        first = train_small(device, sizes, checkpoint=checkpoint)
        seed_everything(0)
        again = SmallCNN(num_classes=len(SHAPES), in_channels=3)
        train, val = shapes_loaders(sizes)
        resumed = fit(
            again,
            train,
            epochs=sizes.epochs + 1,
            lr=3e-3,
            val_loader=val,
            device=device,
            topk=(1,),
            progress=False,
            resume=checkpoint,
        )
    expect(len(resumed) == sizes.epochs + 1, f"the resumed run has {len(resumed)} epochs")
    expect(
        resumed.column("train_loss")[:-1] == first["train_loss"],
        "the resumed history does not begin with the saved one",
    )
    measured = evaluate(again, val, device=device, topk=(1,), progress=False)
    logits = predict(again, val, device=device, progress=False)
    labels = torch.cat([targets for _, targets in val])
    accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    expect(logits.device.type == "cpu" and logits.dtype == torch.float32, "predict's output")
    # A GPU may round a near tie the other way from one pass to the next: one sample's worth.
    one_sample = 1 / len(labels) + 1e-9
    for name, value in (("evaluate", measured["top1"]), ("predict", accuracy)):
        expect(abs(value - resumed.last["val_top1"]) <= one_sample, f"{name} disagrees with fit")
    return {"epochs": len(resumed), "val_top1": measured["top1"]}


def check_cli(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        per_class = sizes.images_per_class // 2
        data = make_image_folder(Path(folder) / "shapes", n_per_class=per_class)
        settings = FinetuneSettings(
            data=data,
            model="resnet18",
            out=Path(folder) / "run",
            weights=None,
            state="full",
            epochs=1,
            lr=1e-3,
            batch_size=8,
            image_size=sizes.image,
            device=str(device),
            channels_last=True,
            workers=2,
            progress=False,
        )
        summary = run_finetune(settings)
        rows = predict_images(
            summary["files"]["checkpoint"], [data], device=str(device), progress=False
        )
    expect(summary["settings"]["device"].startswith(device.type), f"ran on {summary['settings']}")
    expected = len(SHAPES) * per_class
    expect(len(rows) == expected, f"{len(rows)} predictions for {expected} images")
    return {"test": summary["test"], "predictions": len(rows)}


def measure_throughput(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """Training images per second of the model (ResNet-50) with ``fit``, per precision and
    memory layout."""
    side, batch = sizes.throughput_image, sizes.throughput_batch
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, 3, side, side, generator=generator).to(device)
    targets = torch.randint(1000, (batch,), generator=generator).to(device)
    batches = [(inputs, targets)] * sizes.throughput_steps  # the data costs nothing
    rates: dict[str, float] = {}
    for precision, amp in PRECISIONS.items():
        for channels_last in (False, True):
            name = precision + (" channels_last" if channels_last else "")
            torch.manual_seed(0)
            model = torchvision.models.get_model(sizes.throughput_model)
            history = fit(
                model,
                batches,
                epochs=sizes.throughput_epochs,
                device=device,
                amp=amp,
                performance=Performance(channels_last=channels_last),
                topk=(1,),
                progress=False,
            )
            expect(torch.isfinite(torch.tensor(history.column("train_loss"))).all().item(), name)
            seconds = min(history.column("seconds")[1:])
            rates[name] = batch * sizes.throughput_steps / seconds
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return {
        "model": sizes.throughput_model,
        "image_size": side,
        "batch_size": batch,
        "steps_per_epoch": sizes.throughput_steps,
        "images_per_second": rates,
        "speedup_over_fp32": {name: rate / rates["fp32"] for name, rate in rates.items()},
    }


CHECKS: dict[str, Callable[[torch.device, Sizes], dict[str, Any]]] = {
    "device": check_device,
    "non_blocking_copies": check_non_blocking_copies,
    "autocast_bf16": check_autocast(torch.bfloat16),
    "autocast_fp16_scaler": check_autocast(torch.float16),
    "channels_last": check_channels_last,
    "cached_features": check_cached_features,
    "fit_end_to_end": check_fit_end_to_end,
    "cli": check_cli,
    "throughput": measure_throughput,
}


def run_check(check: Callable[..., dict[str, Any]], device: torch.device, sizes: Sizes) -> dict:
    """The check's findings with ``ok`` and its seconds; a failure recorded, not raised."""
    started = time.perf_counter()
    try:
        found = {"ok": True, **check(device, sizes)}
    except Exception as error:  # every check runs and reports, whatever one of them hits
        found = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return {**found, "seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, at tiny sizes")
    parser.add_argument(
        "--out", type=Path, help=f"the JSON file (default: {RESULTS}; none for a dry run)"
    )
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA GPU here; run with --dry-run to check everything else", file=sys.stderr)
        return 2
    device, sizes = (torch.device("cpu"), DRY) if args.dry_run else (torch.device("cuda"), GPU)
    started = time.perf_counter()
    results = {}
    for name, check in CHECKS.items():
        results[name] = run_check(check, device, sizes)
        status = "ok" if results[name]["ok"] else f"FAILED: {results[name]['error']}"
        print(f"{name:22s} {results[name]['seconds']:6.1f} s  {status}", flush=True)
    if results["throughput"]["ok"]:
        for name, rate in results["throughput"]["images_per_second"].items():
            speedup = results["throughput"]["speedup_over_fp32"][name]
            print(f"  {name:18s} {rate:9.1f} images/s  {speedup:.2f}x fp32")
    seconds = time.perf_counter() - started
    print(f"{seconds:.0f} s in all")
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dry_run": args.dry_run,
        "machine": describe_machine(),
        "sizes": asdict(sizes),
        "checks": results,
        "seconds": seconds,
    }
    out = args.out if args.out is not None or args.dry_run else RESULTS
    if out is not None:
        write_results(out, report)
    return 0 if all(result["ok"] for result in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
