"""The visitor that reads one cell's tree and reports what it reaches for.

It matches names, attributes, imports, strings (also put together from pieces), class bases
and special methods against `watchlist`, checks the cell's module-level bindings against the
names the tests rely on (`rebinding`), and scans the code that `%time` and the like run.
"""

from __future__ import annotations

import ast
import re

from ftlib_course.inert import active_parts
from ftlib_course.tamper.bindings import module_level_bindings
from ftlib_course.tamper.findings import Finding
from ftlib_course.tamper.magics import ipython_call, is_harmless, magic_code, reaches_outside
from ftlib_course.tamper.strings import is_string_join, string_pieces
from ftlib_course.tamper.syntax import dotted_name, parse
from ftlib_course.tamper.watchlist import (
    ANY_ATTRIBUTE,
    COMMON_WORDS,
    EXITS,
    HARMLESS_DUNDER_ATTRIBUTES,
    HARMLESS_DUNDER_NAMES,
    HARMLESS_SPECIAL_METHODS,
    IPYTHON_NAMES,
    IPYTHON_STRINGS,
    MODULE_ATTRIBUTES,
    MODULES,
    NAMES,
    OUTSIDE_FOLDER,
    PATH_CALLS,
    PROCESS_PREFIXES,
    SCRIPT_TYPE,
    SUSPECT_BASES,
)


class Scanner(ast.NodeVisitor):
    """One pass over a cell's tree, collecting findings."""

    def __init__(
        self,
        protected: dict[str, str | None],
        aliases: dict[str, str],
        settled: frozenset[str] = frozenset(),
    ) -> None:
        self.protected, self.aliases, self.settled = protected, aliases, settled
        self.findings: list[Finding] = []

    def run(self, tree: ast.Module) -> list[Finding]:
        self._check_rebinding(tree)
        self._skip_strings = _docstrings(tree)
        self.visit(tree)
        unique = {(finding.kind, finding.line): finding for finding in reversed(self.findings)}
        return list(unique.values())

    def _flag(self, kind: str, detail: str, node: ast.AST) -> None:
        self.findings.append(Finding(kind, detail, getattr(node, "lineno", 0)))

    def _resolve(self, dotted: str) -> str:
        root, _, rest = dotted.partition(".")
        target = self.aliases.get(root, root)
        return f"{target}.{rest}" if rest else target

    # rebinding -----------------------------------------------------------------------------

    def _check_rebinding(self, tree: ast.Module) -> None:
        for name, target, node in module_level_bindings(tree):
            if name not in self.protected or (name in self.settled and not _is_global(node)):
                continue
            if target is None:
                self._flag("rebinding", f"rebinds {name!r}, which the tests use", node)
            elif target != self.protected[name]:
                self._flag("rebinding", f"import rebinds {name!r}, which the tests use", node)

    # names, attributes, strings ------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if IPYTHON_NAMES.match(name):
            self._flag("ipython", f"IPython's {name}", node)
        elif name in NAMES:
            self._flag(NAMES[name], f"{name}", node)
        elif name.startswith("__") and name.endswith("__") and name not in HARMLESS_DUNDER_NAMES:
            self._flag("introspection", f"the special name {name}", node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        storing = isinstance(node.ctx, (ast.Store, ast.Del))
        dotted = dotted_name(node)
        module_path = None if dotted is None else self._resolve(dotted)
        if storing:
            self._check_store(node, dotted)
        if attr in ANY_ATTRIBUTE:
            self._flag(ANY_ATTRIBUTE[attr], f".{attr}", node)
        elif IPYTHON_NAMES.match(attr) and not attr.startswith("__"):
            self._flag("ipython", f"IPython's {attr}, read as an attribute", node)
        elif _is_dunder(attr) and attr not in HARMLESS_DUNDER_ATTRIBUTES and not storing:
            self._flag("introspection", f"the special attribute .{attr}", node)
        elif module_path is not None:
            self._check_module_path(module_path, node)
        self.generic_visit(node)

    def _check_store(self, node: ast.Attribute, dotted: str | None) -> None:
        root = None if dotted is None else dotted.split(".")[0]
        if _is_dunder(node.attr) and node.attr != "__doc__":
            self._flag("patching", f"assigns the special attribute .{node.attr}", node)
        elif root is not None and root in self.aliases and not dotted.startswith("torch.backends."):
            self._flag("patching", f"assigns {dotted}, an attribute of an import", node)

    def _check_module_path(self, path: str, node: ast.AST) -> None:
        if path in EXITS:
            self._flag("exit", f"{path} ends the kernel: later tests score 0", node)
            return
        if path in PATH_CALLS:
            self._flag("path", f"{path}: a place outside the notebook's folder", node)
            return
        if path.startswith(PROCESS_PREFIXES):
            self._flag("process", path, node)
            return
        module, _, attr = path.rpartition(".")
        if module in MODULE_ATTRIBUTES and attr in MODULE_ATTRIBUTES[module][1]:
            self._flag(MODULE_ATTRIBUTES[module][0], path, node)
            return
        for prefix, (kind, allowed) in MODULES.items():
            if path == prefix and allowed is not None:
                return  # importing it is fine; what it is used for is checked where it is
            if path == prefix or path.startswith(prefix + "."):
                first = path[len(prefix) + 1 :].split(".")[0]
                if allowed is None or first not in allowed:
                    self._flag(kind, path, node)
                return

    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str) or id(node) in self._skip_strings:
            return
        self._check_string(node.value, node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._check_built_string(node)
        # Only the leading literal of an f-string can make it an absolute path.
        first = node.values[0] if node.values else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            self._check_string(first.value, node)
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value)

    def _check_string(self, text: str, node: ast.AST) -> None:
        if self._check_name_string(text, node):
            return
        parts = text.split(".")
        if len(parts) > 1 and all(part.isidentifier() for part in parts):  # attrgetter("a.b")
            for part in parts:
                self._check_name_string(part, node)
        elif OUTSIDE_FOLDER.match(text) or ".." in re.split(r"[/\\]", text):
            self._flag("path", f"{text[:60]!r}: a place outside the notebook's folder", node)
        elif SCRIPT_TYPE.search(text) or ("<" in text and active_parts(text)):
            self._flag("active_content", f"{text[:60]!r}: runs in the viewer's browser", node)

    def _check_name_string(self, text: str, node: ast.AST) -> bool:
        if text in ANY_ATTRIBUTE and text not in COMMON_WORDS:
            self._flag(ANY_ATTRIBUTE[text], f"the name {text!r} as a string", node)
        elif _is_dunder(text) and text not in HARMLESS_DUNDER_ATTRIBUTES:
            self._flag("introspection", f"the name {text!r} as a string", node)
        elif IPYTHON_STRINGS.match(text):
            self._flag("ipython", f"IPython's {text} as a string", node)
        else:
            return False
        return True

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._check_built_string(node)
        self.generic_visit(node)

    def _check_built_string(self, node: ast.AST) -> None:
        """Strings put together from pieces: the whole is checked like a literal."""
        pieces = string_pieces(node)
        if pieces is None or isinstance(node, ast.Constant):
            return
        if all(piece is not None for piece in pieces):
            self._check_string("".join(pieces), node)
        elif (pieces[0] or "").startswith("__") or (pieces[-1] or "").endswith("__"):
            self._flag("introspection", "a special name put together at run time", node)

    # imports ------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module_path(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        for alias in node.names:
            if alias.name in ANY_ATTRIBUTE:
                self._flag(
                    ANY_ATTRIBUTE[alias.name], f"from {node.module} import {alias.name}", node
                )
            elif alias.name == "*":
                self._check_module_path(node.module, node)
            else:
                self._check_module_path(f"{node.module}.{alias.name}", node)

    # definitions and calls -----------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            dotted = dotted_name(base.value if isinstance(base, ast.Subscript) else base)
            if dotted is None:
                self._flag("subclass", f"class {node.name} derives from a computed base", node)
            elif {dotted.split(".")[-1], self._resolve(dotted).split(".")[-1]} & SUSPECT_BASES:
                self._flag("subclass", f"class {node.name} derives from {dotted}", node)
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self._flag("subclass", f"class {node.name} sets a metaclass", node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name in ("__torch_function__", "__torch_dispatch__"):
            self._flag("torch_function", f"defines {node.name}", node)
        elif _is_dunder(node.name) and node.name not in HARMLESS_SPECIAL_METHODS:
            self._flag("special_method", f"defines {node.name}", node)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        function = dotted_name(node.func)
        if function == "type" and len(node.args) == 3:
            self._flag("subclass", "type(name, bases, namespace) makes a class", node)
        elif is_string_join(node):
            self._check_built_string(node)
        if function in ("setattr", "delattr") and node.args:
            target = dotted_name(node.args[0])
            if target is not None and target.split(".")[0] in self.aliases:
                self._flag("patching", f"{function} on {target}, an import", node)
        call = ipython_call(node)
        if call is not None and self._is_harmless_ipython_call(node, *call):
            return
        self.generic_visit(node)

    def _is_harmless_ipython_call(self, node: ast.Call, method: str, args: list[str]) -> bool:
        """Whether a magic or shell escape is one an honest lesson uses (its code is scanned)."""
        code = magic_code(method, args)
        if code is not None:
            self._scan_magic_code(node, code)
            return True
        if reaches_outside(method, args):
            self._flag("path", f"!{args[0][:60]}: a place outside the notebook's folder", node)
        return is_harmless(method, args)

    def _scan_magic_code(self, node: ast.Call, pieces: list[str]) -> None:
        for code in pieces:
            tree = parse(code)
            if tree is None and code.strip():
                self._flag("ipython", "a magic whose code cannot be read", node)
            elif tree is not None:
                for finding in Scanner(self.protected, self.aliases, self.settled).run(tree):
                    self._flag(finding.kind, finding.detail, node)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of string constants that are statements of their own (docstrings and the like)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def _is_global(node: ast.AST) -> bool:
    """A `global` statement: its name is bound when the function runs, wherever that is."""
    return isinstance(node, ast.Global)


def type_aliases(tree: ast.AST) -> dict[str, str]:
    """name -> the type it names, for module-level `F = float` of the types classes must not
    derive from: a class derived from `F` derives from `float`."""
    aliases = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], dotted_name(node.value)
            if isinstance(target, ast.Name) and value and value.split(".")[-1] in SUSPECT_BASES:
                aliases[target.id] = value
    return aliases


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")
