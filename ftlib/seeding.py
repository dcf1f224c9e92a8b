"""Make a run repeatable: one call seeds every random number generator training touches.

Python's ``random``, NumPy and PyTorch (CPU and every GPU) each keep their own generator; a data
loader that shuffles draws from yet another one if it is given one. Seeding them all, and handing
the loader a seeded generator, makes two runs of the same notebook produce the same numbers.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_MAX_SEED = 2**32 - 1  # NumPy's limit; torch accepts more, but one range for all is simpler


def seed_everything(seed: int, *, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) with ``seed``.

    Why: comparing two fine-tuning strategies only means something if the difference does not
    come from the luck of initialisation and shuffling.

    Args:
        seed: an integer in ``[0, 2**32 - 1]``.
        deterministic: also make PyTorch use deterministic algorithms (and cuDNN pick them).
            Needed for bit-identical GPU runs; slower, and operations without a deterministic
            version then raise. False switches that requirement off again.

    Returns:
        A ``torch.Generator`` seeded with ``seed``: pass it as ``DataLoader(generator=...)`` so the
        shuffling order repeats too.

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is outside ``[0, 2**32 - 1]``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be in [0, {_MAX_SEED}], got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic (see PyTorch's reproducibility
        # notes); it only takes effect if set before the first cuBLAS call.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
