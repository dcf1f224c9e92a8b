"""Lesson 2's tests grade the idea of each exercise: right answers written differently earn the
points, plausible wrong ones lose them with a message that says what went wrong, and a mistake
that breaks a rule the exercise states already fails the visible test.

Each answer runs in one real kernel that has run the solution notebook, followed by the
exercise's test cell, as the autograder runs it.
"""

from __future__ import annotations

from lesson_kernel import Answer, answer_tests

HOOKS_ON_OUTPUTS = """
def preactivation_grads(model, inputs, targets, loss_fn):
    grads, handles = [], []

    def keep(module, args, output):
        slot = len(grads)
        grads.append(None)
        output.register_hook(lambda grad: grads.__setitem__(slot, grad.detach()))

    for module in {modules}:
        if isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(keep))
    {body}
    return grads
"""
SAFE_BODY = """try:
        loss_fn(model(inputs), targets).backward()
    finally:
        for handle in handles:
            handle.remove()"""

RIGHT = [
    Answer(
        "gradients_preactivation_grads",
        "tensor hooks on each output",
        HOOKS_ON_OUTPUTS.format(modules="model.modules()", body=SAFE_BODY),
    ),
    Answer(
        "gradients_preactivation_grads",
        "full backward hooks, put back in forward order",
        """
def preactivation_grads(model, inputs, targets, loss_fn):
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    caught = {}
    handles = [
        layer.register_full_backward_hook(
            lambda module, grad_in, grad_out: caught.__setitem__(module, grad_out[0].detach())
        )
        for layer in linears
    ]
    try:
        loss_fn(model(inputs), targets).backward()
    finally:
        for handle in handles:
            handle.remove()
    return [caught[layer] for layer in linears]
""",
    ),
    Answer(
        "gradients_log10_grad_ratio",
        "ftlib's norms on a float64 copy, math.log10",
        """
def log10_grad_ratio(model, inputs, targets, loss_fn):
    twin = copy.deepcopy(model).double()
    if targets.is_floating_point():
        targets = targets.double()
    norms = list(activation_grad_norms(twin, inputs.double(), targets, loss_fn=loss_fn).values())
    return math.log10(norms[0]) - math.log10(norms[-1])
""",
    ),
    Answer(
        "gradients_log10_grad_ratio",
        "own gradients, one log of the ratio",
        """
def log10_grad_ratio(model, inputs, targets, loss_fn):
    twin = copy.deepcopy(model).to(torch.float64)
    targets = targets.to(torch.float64) if torch.is_floating_point(targets) else targets
    grads = preactivation_grads(twin, inputs.to(torch.float64), targets, loss_fn)
    return torch.log10(grads[0].norm() / grads[-1].norm()).item()
""",
    ),
    Answer(
        "gradients_clip_by_norm",
        "a list first, the norm in float64, a Python scale",
        """
def clip_by_norm_(parameters, max_norm):
    tensors = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    grads = [t.grad for t in tensors if t.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / (total.item() + 1e-6))
    for g in grads:
        g.mul_(scale)
    return total
""",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "Python floats and svdvals",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    rho = torch.linalg.eigvals(matrix).abs().max().item()
    if rho <= rtol * torch.linalg.svdvals(matrix)[0].item():
        raise ValueError(f"spectral radius {rho:.3g} cannot be told from 0")
    return matrix * (radius / rho)
""",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "the largest entry as the matrix's size",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    rho = torch.linalg.eigvals(matrix).abs().max()
    if rho <= rtol * matrix.abs().max():
        raise ValueError("spectral radius 0 within the tolerance")
    return matrix * (radius / rho).to(matrix.dtype)
""",
    ),
    Answer(
        "gradients_participation_ratios",
        "nan_to_num for the zero matrices",
        """
def participation_ratios(jacobians):
    power = torch.linalg.svdvals(jacobians) ** 2
    return torch.nan_to_num(power.sum(-1) ** 2 / (power**2).sum(-1), nan=0.0)
""",
    ),
    Answer(
        "gradients_participation_ratios",
        "ftlib's single-spectrum version, zeros and dtype handled",
        """
from ftlib.analysis.diagnostics import participation_ratio


def participation_ratios(jacobians):
    spectra = torch.linalg.svdvals(jacobians)
    ratios = [participation_ratio(s) if s.max() > 0 else 0.0 for s in spectra]
    return torch.tensor(ratios, dtype=jacobians.dtype)
""",
    ),
]

WRONG = [
    Answer(
        "gradients_preactivation_grads",
        "only the top-level layers",
        HOOKS_ON_OUTPUTS.format(modules="model", body=SAFE_BODY),
        "model.modules() finds nested layers",
    ),
    Answer(
        "gradients_preactivation_grads",
        "hooks removed only when nothing fails",
        HOOKS_ON_OUTPUTS.format(
            modules="model.modules()",
            body="""loss_fn(model(inputs), targets).backward()
    for handle in handles:
        handle.remove()""",
        ),
        "finally: block",
    ),
    Answer(
        "gradients_preactivation_grads",
        "backward order",
        """
def preactivation_grads(model, inputs, targets, loss_fn):
    grads = []
    handles = [
        m.register_full_backward_hook(lambda module, gi, go: grads.append(go[0].detach()))
        for m in model.modules()
        if isinstance(m, nn.Linear)
    ]
    try:
        loss_fn(model(inputs), targets).backward()
    finally:
        for handle in handles:
            handle.remove()
    return grads
""",
        "in forward order",
    ),
    Answer(
        "gradients_preactivation_grads",
        "swallows the loss's error",
        HOOKS_ON_OUTPUTS.format(
            modules="model.modules()",
            body="""try:
        loss_fn(model(inputs), targets).backward()
    except RuntimeError:
        pass
    finally:
        for handle in handles:
            handle.remove()""",
        ),
        "returned normally",
    ),
    Answer(
        "gradients_log10_grad_ratio",
        "float32",
        """
def log10_grad_ratio(model, inputs, targets, loss_fn):
    grads = preactivation_grads(copy.deepcopy(model), inputs, targets, loss_fn)
    return (torch.log10(grads[0].norm()) - torch.log10(grads[-1].norm())).item()
""",
        "underflowed to 0",
    ),
    Answer(
        "gradients_log10_grad_ratio",
        "converts the model itself",
        """
def log10_grad_ratio(model, inputs, targets, loss_fn):
    targets = targets.double() if torch.is_floating_point(targets) else targets
    grads = preactivation_grads(model.double(), inputs.double(), targets, loss_fn)
    return (torch.log10(grads[0].norm()) - torch.log10(grads[-1].norm())).item()
""",
        "convert a copy",
    ),
    Answer(
        "gradients_log10_grad_ratio",
        "turns class labels into floats",
        """
def log10_grad_ratio(model, inputs, targets, loss_fn):
    grads = preactivation_grads(copy.deepcopy(model).double(), inputs.double(), targets.double(),
                                loss_fn)
    return (torch.log10(grads[0].norm()) - torch.log10(grads[-1].norm())).item()
""",
        "leave integer targets as they are",
    ),
    Answer(
        "gradients_log10_grad_ratio",
        "the last over the first",
        """
def log10_grad_ratio(model, inputs, targets, loss_fn):
    targets = targets.double() if torch.is_floating_point(targets) else targets
    grads = preactivation_grads(copy.deepcopy(model).double(), inputs.double(), targets, loss_fn)
    return (torch.log10(grads[-1].norm()) - torch.log10(grads[0].norm())).item()
""",
        "the last over the first",
    ),
    Answer(
        "gradients_clip_by_norm",
        "calls PyTorch's clip_grad_norm_",
        "def clip_by_norm_(parameters, max_norm):\n"
        "    return torch.nn.utils.clip_grad_norm_(parameters, max_norm)",
        "called PyTorch's clipping",
    ),
    Answer(
        "gradients_clip_by_norm",
        "imports clip_grad_norm_ under another name",
        "from torch.nn.utils import clip_grad_norm_ as _clip\n\n\n"
        "def clip_by_norm_(parameters, max_norm):\n"
        "    return _clip(parameters, max_norm)",
        "called PyTorch's clipping",
    ),
    Answer(
        "gradients_clip_by_norm",
        "no 1e-6",
        """
def clip_by_norm_(parameters, max_norm):
    tensors = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    grads = [t.grad for t in tensors if t.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    for g in grads:
        g.mul_(torch.clamp(max_norm / total, max=1.0))
    return total
""",
        "here 0.5",
    ),
    Answer(
        "gradients_clip_by_norm",
        "replaces .grad instead of scaling it",
        """
def clip_by_norm_(parameters, max_norm):
    tensors = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    with_grads = [t for t in tensors if t.grad is not None]
    if not with_grads:
        return torch.tensor(0.0)
    total = torch.sqrt(sum((t.grad**2).sum() for t in with_grads))
    for t in with_grads:
        t.grad = t.grad * torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return total
""",
        "keep the .grad",
    ),
    Answer(
        "gradients_clip_by_norm",
        "iterates a generator twice",
        """
def clip_by_norm_(parameters, max_norm):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    for p in parameters:
        if p.grad is not None:
            p.grad.mul_(torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total
""",
        "iterated only once",
    ),
    Answer(
        "gradients_clip_by_norm",
        "returns a Python float",
        """
def clip_by_norm_(parameters, max_norm):
    tensors = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    grads = [t.grad for t in tensors if t.grad is not None]
    total = sum((g**2).sum().item() for g in grads) ** 0.5
    for g in grads:
        g.mul_(min(1.0, max_norm / (total + 1e-6)))
    return total
""",
        "should be a torch.Tensor",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "an exact test for 0",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    current = torch.linalg.eigvals(matrix).abs().max()
    if current == 0:
        raise ValueError("spectral radius 0")
    return matrix * (radius / current).to(matrix.dtype)
""",
        "not with 0",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "an absolute tolerance",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    current = torch.linalg.eigvals(matrix).abs().max()
    if current <= rtol:
        raise ValueError("spectral radius 0")
    return matrix * (radius / current).to(matrix.dtype)
""",
        "relative to the matrix's size",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "a fixed tolerance instead of rtol",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    current = torch.linalg.eigvals(matrix).abs().max()
    if current <= 1e-3 * torch.linalg.matrix_norm(matrix, ord=2):
        raise ValueError("spectral radius 0")
    return matrix * (radius / current).to(matrix.dtype)
""",
        "use rtol",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "the spectral norm instead of the radius",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    return matrix * (radius / torch.linalg.matrix_norm(matrix, ord=2))
""",
        "not its largest singular value",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "real parts of the eigenvalues",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    current = torch.linalg.eigvals(matrix).real.abs().max()
    if current <= rtol * torch.linalg.matrix_norm(matrix, ord=2):
        raise ValueError("spectral radius 0")
    return matrix * (radius / current).to(matrix.dtype)
""",
        "not real parts",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "scales the matrix in place",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    current = torch.linalg.eigvals(matrix).abs().max()
    if current <= rtol * torch.linalg.matrix_norm(matrix, ord=2):
        raise ValueError("spectral radius 0")
    return matrix.mul_((radius / current).to(matrix.dtype))
""",
        "do not change it",
    ),
    Answer(
        "gradients_scale_to_spectral_radius",
        "float64 for every input",
        """
def scale_to_spectral_radius(matrix, radius, rtol=1e-3):
    current = torch.linalg.eigvals(matrix).abs().max()
    if current <= rtol * torch.linalg.matrix_norm(matrix, ord=2):
        raise ValueError("spectral radius 0")
    return matrix.double() * (radius / current.double())
""",
        "dtype torch.float32",
    ),
    Answer(
        "gradients_participation_ratios",
        "s for s^2",
        """
def participation_ratios(jacobians):
    s = torch.linalg.svdvals(jacobians)
    total = s.sum(-1)
    return torch.where(total > 0, total**2 / (s**2).sum(-1), torch.zeros_like(total))
""",
        "square the s first",
    ),
    Answer(
        "gradients_participation_ratios",
        "eigenvalues for singular values",
        """
def participation_ratios(jacobians):
    power = torch.linalg.eigvals(jacobians).abs() ** 2
    total = power.sum(-1)
    return torch.where(total > 0, total**2 / (power**2).sum(-1), torch.zeros_like(total))
""",
        "use the singular values",
    ),
    Answer(
        "gradients_participation_ratios",
        "nan for the zero matrix",
        """
def participation_ratios(jacobians):
    power = torch.linalg.svdvals(jacobians) ** 2
    return power.sum(-1) ** 2 / (power**2).sum(-1)
""",
        "torch.where",
    ),
    Answer(
        "gradients_participation_ratios",
        "ftlib's single-spectrum version as it is",
        """
from ftlib.analysis.diagnostics import participation_ratio


def participation_ratios(jacobians):
    return torch.tensor([participation_ratio(s) for s in torch.linalg.svdvals(jacobians)])
""",
        "non-zero singular value",
    ),
    Answer(
        "gradients_participation_ratios",
        "always float64",
        """
def participation_ratios(jacobians):
    power = torch.linalg.svdvals(jacobians.double()) ** 2
    return torch.nan_to_num(power.sum(-1) ** 2 / (power**2).sum(-1), nan=0.0)
""",
        "dtype torch.float32",
    ),
]


kernel, test_right_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
    "02_gradients", RIGHT, WRONG
)
