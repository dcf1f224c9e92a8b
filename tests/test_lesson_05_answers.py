"""Lesson 5's tests grade what each exercise teaches: correct answers written differently earn
the points, plausible wrong ones lose them with a message that helps, caught by the visible test
where they break a rule the exercise states (see `lesson_answers`)."""

from lesson_answers import Answer, answer_tests

LESSON = "05_freezing"

CORRECT = [
    Answer(
        "freezing_freeze_first_layers",
        "ftlib.unfreeze, then ftlib.freeze on the chosen modules",
        """
def freeze_first_layers(model, n):
    from ftlib import freeze, unfreeze
    layers = [name for name, module in model.named_modules()
              if isinstance(module, (nn.Conv2d, nn.Linear))]
    if n < 0 or n > len(layers):
        raise ValueError(f"n must lie in 0..{len(layers)}")
    unfreeze(model)
    if n:
        freeze(model, layers[:n])
    return layers[:n]
""",
    ),
    Answer(
        "freezing_freeze_first_layers",
        "sets requires_grad parameter by parameter from the names",
        """
def freeze_first_layers(model, n):
    layers = [name for name, module in model.named_modules()
              if isinstance(module, (nn.Conv2d, nn.Linear))]
    if not 0 <= n <= len(layers):
        raise ValueError("n out of range")
    chosen = layers[:n]
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not any(name.startswith(layer + ".") for layer in chosen)
    return chosen
""",
    ),
    Answer(
        "freezing_reinit_from",
        "Module.apply, which visits children before their parents",
        """
def reinit_from(model, k):
    blocks = top_level_blocks(model)
    if k < 0 or k > len(blocks):
        raise ValueError(f"k={k}, but there are {len(blocks)} blocks")
    def reset(module):
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    for _, block in blocks[k:]:
        block.apply(reset)
    return [name for name, _ in blocks[k:]]
""",
    ),
    Answer(
        "freezing_reinit_from",
        "finds the blocks with named_children, without ftlib",
        """
def reinit_from(model, k):
    blocks = [(name, child) for name, child in model.named_children()
              if len(list(child.parameters())) > 0]
    if not 0 <= k <= len(blocks):
        raise ValueError("k out of range")
    for _, block in blocks[k:]:
        for module in block.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return [name for name, _ in blocks[k:]]
""",
    ),
    Answer(
        "freezing_count_general_blocks",
        "accuracy >= base - tolerance - 1e-9, counting up",
        """
def count_general_blocks(anb, base, tolerance=0.02):
    k = 0
    while k + 1 in anb and anb[k + 1] >= base - tolerance - 1e-9:
        k += 1
    return k
""",
    ),
    Answer(
        "freezing_count_general_blocks",
        "math.isclose for the boundary",
        """
import math
def count_general_blocks(anb, base, tolerance=0.02):
    general = 0
    for k in sorted(anb):
        cost = base - anb[k]
        if cost > tolerance and not math.isclose(cost, tolerance):
            return general
        general = k
    return general
""",
    ),
    Answer(
        "freezing_block_outputs",
        "one hook that finds the name by the module, and torch.inference_mode",
        """
def block_outputs(model, images, blocks):
    names = {model.get_submodule(block): block for block in blocks}
    outputs = {}
    def record(module, inputs, output):
        outputs[names[module]] = output.clone()
    handles = [module.register_forward_hook(record) for module in names]
    mode = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        model.train(mode)
    return torch.cat([outputs[block].flatten(1) for block in blocks], dim=1)
""",
    ),
    Answer(
        "freezing_block_outputs",
        "flattens and copies inside the hook, restores the mode of every submodule",
        """
def block_outputs(model, images, blocks):
    modes = {module: module.training for module in model.modules()}
    captured = {}
    handles = []
    for block in blocks:
        def hook(module, inputs, output, block=block):
            captured[block] = output.detach().flatten(1).clone()
        handles.append(model.get_submodule(block).register_forward_hook(hook))
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.training = mode
    return torch.cat([captured[block] for block in blocks], dim=1)
""",
    ),
]

WRONG = [
    Answer(
        "freezing_freeze_first_layers",
        "does not unfreeze first, so a second call adds to the first",
        """
def freeze_first_layers(model, n):
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not 0 <= n <= len(layers):
        raise ValueError("n out of range")
    for _, module in layers[:n]:
        module.requires_grad_(False)
    return [name for name, _ in layers[:n]]
""",
        "after the second call",
    ),
    Answer(
        "freezing_freeze_first_layers",
        "counts batch norm as a weight layer",
        """
def freeze_first_layers(model, n):
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))]
    if not 0 <= n <= len(layers):
        raise ValueError("n out of range")
    model.requires_grad_(True)
    for _, module in layers[:n]:
        module.requires_grad_(False)
    return [name for name, _ in layers[:n]]
""",
        "freeze_first_layers(net, 3)",
    ),
    Answer(
        "freezing_freeze_first_layers",
        "freezes the weights but not the biases",
        """
def freeze_first_layers(model, n):
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not 0 <= n <= len(layers):
        raise ValueError("n out of range")
    model.requires_grad_(True)
    for _, module in layers[:n]:
        module.weight.requires_grad_(False)
    return [name for name, _ in layers[:n]]
""",
        "the parameters left trainable with n=3",
    ),
    Answer(
        "freezing_freeze_first_layers",
        "slices silently when n is too large",
        """
def freeze_first_layers(model, n):
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.requires_grad_(True)
    for _, module in layers[:n]:
        module.requires_grad_(False)
    return [name for name, _ in layers[:n]]
""",
        "freeze_first_layers(net, 5)",
    ),
    Answer(
        "freezing_reinit_from",
        "resets the direct children of a block only",
        """
def reinit_from(model, k):
    blocks = top_level_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError("k out of range")
    for _, block in blocks[k:]:
        for module in [block, *block.children()]:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return [name for name, _ in blocks[k:]]
""",
        "a nested Sequential, k=1",
    ),
    Answer(
        "freezing_reinit_from",
        "resets convolutions and linear layers but not batch norm",
        """
def reinit_from(model, k):
    blocks = top_level_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError("k out of range")
    for _, block in blocks[k:]:
        for module in block.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.reset_parameters()
    return [name for name, _ in blocks[k:]]
""",
        "SmallCNN, k=2",
    ),
    Answer(
        "freezing_reinit_from",
        "counts every child as a block, ReLU included",
        """
def reinit_from(model, k):
    blocks = list(model.named_children())
    if not 0 <= k <= len(blocks):
        raise ValueError("k out of range")
    for _, block in blocks[k:]:
        for module in block.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return [name for name, _ in blocks[k:]]
""",
        "reinit_from(nested, 1)",
    ),
    Answer(
        "freezing_reinit_from",
        "makes the re-initialised blocks trainable",
        """
def reinit_from(model, k):
    blocks = top_level_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError("k out of range")
    for _, block in blocks[k:]:
        for module in block.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    model.requires_grad_(True)
    return [name for name, _ in blocks[k:]]
""",
        "requires_grad of block1.0",
    ),
    Answer(
        "freezing_reinit_from",
        "no ValueError for k beyond the last block",
        """
def reinit_from(model, k):
    blocks = top_level_blocks(model)
    for _, block in blocks[k:]:
        for module in block.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return [name for name, _ in blocks[k:]]
""",
        "reinit_from(SmallCNN, 5)",
    ),
    Answer(
        "freezing_count_general_blocks",
        "base - accuracy > tolerance, without the allowance for rounding",
        """
def count_general_blocks(anb, base, tolerance=0.02):
    general = 0
    for k in sorted(anb):
        if base - anb[k] > tolerance:
            break
        general = k
    return general
""",
        "allow 1e-9 for rounding",
    ),
    Answer(
        "freezing_count_general_blocks",
        "accuracy < base - tolerance, without the allowance for rounding",
        """
def count_general_blocks(anb, base, tolerance=0.02):
    general = 0
    for k in sorted(anb):
        if anb[k] < base - tolerance:
            break
        general = k
    return general
""",
        "allow 1e-9 for rounding",
    ),
    Answer(
        "freezing_count_general_blocks",
        "the largest k within the tolerance, ignoring a gap below it",
        """
def count_general_blocks(anb, base, tolerance=0.02):
    within = [k for k, accuracy in anb.items() if base - accuracy <= tolerance + 1e-9]
    return max(within, default=0)
""",
        "every k up to the answer must be within the tolerance",
    ),
    Answer(
        "freezing_count_general_blocks",
        "walks the dictionary in its own order",
        """
def count_general_blocks(anb, base, tolerance=0.02):
    general = 0
    for k, accuracy in anb.items():
        if base - accuracy > tolerance + 1e-9:
            break
        general = k
    return general
""",
        "with the keys in another order",
    ),
    Answer(
        "freezing_block_outputs",
        "keeps the output tensor itself, which the in-place ReLU then overwrites",
        """
def block_outputs(model, images, blocks):
    outputs, handles = {}, []
    for block in blocks:
        def record(module, inputs, output, block=block):
            outputs[block] = output.detach()
        handles.append(model.get_submodule(block).register_forward_hook(record))
    mode = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        model.train(mode)
    return torch.cat([outputs[block].flatten(1) for block in blocks], dim=1)
""",
        "the output of block2.1",
    ),
    Answer(
        "freezing_block_outputs",
        "one forward pass per block",
        """
def block_outputs(model, images, blocks):
    mode = model.training
    parts = []
    for block in blocks:
        kept = []
        handle = model.get_submodule(block).register_forward_hook(
            lambda module, inputs, output: kept.append(output.clone()))
        try:
            model.eval()
            with torch.no_grad():
                model(images)
        finally:
            handle.remove()
            model.train(mode)
        parts.append(kept[0].flatten(1))
    return torch.cat(parts, dim=1)
""",
        "forward passes of the model for two blocks",
    ),
    Answer(
        "freezing_block_outputs",
        "leaves the model in eval mode",
        """
def block_outputs(model, images, blocks):
    outputs, handles = {}, []
    for block in blocks:
        def record(module, inputs, output, block=block):
            outputs[block] = output.clone()
        handles.append(model.get_submodule(block).register_forward_hook(record))
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat([outputs[block].flatten(1) for block in blocks], dim=1)
""",
        "train mode after the call",
    ),
    Answer(
        "freezing_block_outputs",
        "no try/finally: a failing forward pass leaves its hooks behind",
        """
def block_outputs(model, images, blocks):
    outputs, handles = {}, []
    for block in blocks:
        def record(module, inputs, output, block=block):
            outputs[block] = output.clone()
        handles.append(model.get_submodule(block).register_forward_hook(record))
    mode = model.training
    model.eval()
    with torch.no_grad():
        model(images)
    for handle in handles:
        handle.remove()
    model.train(mode)
    return torch.cat([outputs[block].flatten(1) for block in blocks], dim=1)
""",
        "forward hooks left after a forward pass that failed",
    ),
    Answer(
        "freezing_block_outputs",
        "runs the model in train mode",
        """
def block_outputs(model, images, blocks):
    outputs, handles = {}, []
    for block in blocks:
        def record(module, inputs, output, block=block):
            outputs[block] = output.clone()
        handles.append(model.get_submodule(block).register_forward_hook(record))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat([outputs[block].flatten(1) for block in blocks], dim=1)
""",
        "block_outputs(model, images, ['block1'])",
    ),
    Answer(
        "freezing_block_outputs",
        "concatenates in the order the modules ran, not the order asked for",
        """
def block_outputs(model, images, blocks):
    outputs, handles = {}, []
    for block in blocks:
        def record(module, inputs, output, block=block):
            outputs[block] = output.clone()
        handles.append(model.get_submodule(block).register_forward_hook(record))
    mode = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        model.train(mode)
    return torch.cat([output.flatten(1) for output in outputs.values()], dim=1)
""",
        "block_outputs(model, images, ['block3', 'block1'])",
    ),
]

kernel, test_correct_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
    LESSON, CORRECT, WRONG
)
