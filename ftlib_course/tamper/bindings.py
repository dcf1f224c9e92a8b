"""Which names a piece of code reads and binds in the module namespace, and in what order.

The rebinding check needs Python's scoping rules: a function's parameters and locals are not
the module's names, comprehension variables are local to the comprehension, a `global`
statement binds wherever the function runs, and an assignment reads its value before it binds
its targets.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator


def imports(tree: ast.AST) -> dict[str, str]:
    """alias -> dotted path of what it names, for every import in `tree`."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def global_reads(tree: ast.AST, local: frozenset[str] = frozenset()) -> set[str]:
    """Names `tree` reads from the module namespace: not a function's parameters or locals, not
    comprehension variables (`def f(model): return model` reads no `model`)."""
    if isinstance(tree, ast.Name):
        return {tree.id} if isinstance(tree.ctx, ast.Load) and tree.id not in local else set()
    if isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        outer: list[ast.AST] = [*tree.args.defaults, *tree.args.kw_defaults]
        outer += getattr(tree, "decorator_list", [])
        inner = local | _local_names(tree)
        body = tree.body if isinstance(tree.body, list) else [tree.body]
        return _reads_of(outer, local) | _reads_of(body, inner)
    if isinstance(tree, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        inner = local | {
            name.id
            for generator in tree.generators
            for name in ast.walk(generator.target)
            if isinstance(name, ast.Name)
        }
        return _reads_of(list(ast.iter_child_nodes(tree)), inner)
    return _reads_of(list(ast.iter_child_nodes(tree)), local)


def _reads_of(nodes: list[ast.AST], local: frozenset[str]) -> set[str]:
    return set().union(*(global_reads(node, local) for node in nodes if node is not None))


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> frozenset[str]:
    """A function's parameters and the names its body binds, less those it declares global."""
    arguments = function.args
    names = {
        argument.arg
        for argument in [
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            *filter(None, [arguments.vararg, arguments.kwarg]),
        ]
    }
    declared: set[str] = set()
    body = function.body if isinstance(function.body, list) else [function.body]
    pending = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Global):
            declared.update(node.names)
        names.update(_bound_names(node))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(imports(node))
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            pending += list(ast.iter_child_nodes(node))
    return frozenset(names - declared)


def defined_names(tree: ast.Module) -> set[str]:
    """Names a cell defines on purpose: top-level assignments, functions and classes.

    Loop and `with` variables of a setup cell are incidental; a student reusing them is fine.
    """
    names = set()
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in getattr(statement, "targets", None) or [statement.target]:
                names |= _target_names(target)
    return names


def _target_names(target: ast.AST) -> set[str]:
    """Names an assignment target binds: `a`, `a, (b, *c)`; not `d` in `d[k] = v`."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*map(_target_names, target.elts))
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()


# Fields in the order Python runs them, where it differs from the order of the fields.
_EVALUATION_ORDER: dict[type, tuple[str, ...]] = {
    ast.Assign: ("value", "targets"),
    ast.AnnAssign: ("value", "target"),
    ast.NamedExpr: ("value", "target"),
    ast.For: ("iter", "target", "body", "orelse"),
    ast.AsyncFor: ("iter", "target", "body", "orelse"),
    ast.comprehension: ("iter", "target", "ifs"),
    ast.ListComp: ("generators", "elt"),
    ast.SetComp: ("generators", "elt"),
    ast.GeneratorExp: ("generators", "elt"),
    ast.DictComp: ("generators", "key", "value"),
}


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def first_uses(node: ast.AST, uses: dict[str, str]) -> None:
    """Record in `uses` whether each name `node` uses at module level is first read or bound,
    in the order Python runs it (the value of an assignment before its targets)."""
    if isinstance(node, ast.Name):
        uses.setdefault(node.id, "read" if isinstance(node.ctx, ast.Load) else "bound")
        return
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for name in imports(node):
            uses.setdefault(name, "bound")
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        uses.setdefault(node.name, "bound")  # what their bodies read is read when called
        return
    if isinstance(node, ast.Lambda):
        return
    if isinstance(node, ast.AugAssign):
        for name in _target_names(node.target):
            uses.setdefault(name, "read")
    order = _EVALUATION_ORDER.get(type(node))
    children = (
        list(ast.iter_child_nodes(node))
        if order is None
        else [child for field in order for child in _as_list(getattr(node, field, None))]
    )
    for child in children:
        if child is not None:
            first_uses(child, uses)


def eager_reads(module: ast.Module) -> set[str]:
    """Names a statement reads when it runs (not inside the functions it defines)."""
    return {
        node.id
        for node in _module_scope(module)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def module_level_bindings(tree: ast.Module) -> Iterator[tuple[str, str | None, ast.AST]]:
    """(name, import target or None, node) for every name `tree` binds in the module namespace.

    Comprehension variables are left out (they are local to the comprehension); names a
    function declares `global` are in.
    """
    comprehension_variables = _comprehension_targets(tree)
    for node in _module_scope(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name, target in imports(node).items():
                yield name, target, node
        elif id(node) not in comprehension_variables:
            for name in _bound_names(node):
                yield name, None, node
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            for name in node.names:
                yield name, None, node


def _module_scope(tree: ast.Module) -> Iterator[ast.AST]:
    """Nodes of `tree` outside functions, lambdas and class bodies (walrus targets included)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            pending += [*node.decorator_list, *getattr(node, "bases", [])]
            if not isinstance(node, ast.ClassDef):
                pending += [*node.args.defaults, *node.args.kw_defaults]
            continue
        if isinstance(node, ast.Lambda):
            continue
        pending += [child for child in ast.iter_child_nodes(node) if child is not None]


def _bound_names(node: ast.AST) -> Iterator[str]:
    """Names that `node` binds in the scope it runs in (comprehension variables excluded)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        yield node.id
    elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
        yield node.name
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest


def _comprehension_targets(tree: ast.AST) -> set[int]:
    """ids of Name nodes that are comprehension variables (local to the comprehension)."""
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension):
            targets |= {id(name) for name in ast.walk(node.target) if isinstance(name, ast.Name)}
    return targets
