"""Shared test settings."""

import torch

# One intra-op thread per test process: the suite runs its processes in parallel (pytest -n), and
# tiny models are slower, not faster, when several processes each spread over every core.
torch.set_num_threads(1)
