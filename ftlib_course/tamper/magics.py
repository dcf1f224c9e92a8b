"""Which IPython magics and shell escapes an honest lesson uses, and with which arguments.

IPython turns `%magic`, `%%magic` and `!command` into `get_ipython()` calls, which the scan
flags as IPython's machinery; the ones here are let through. None may hold `{` or `$`: IPython
evaluates what they enclose. For `%time`, `%timeit` and `%%capture` the code they run is
scanned like a cell of its own.
"""

from __future__ import annotations

import ast
import re

from ftlib_course.tamper.syntax import dotted_name
from ftlib_course.tamper.watchlist import OUTSIDE_FOLDER, words

_ANY_ARGUMENT = re.compile(r"[^{}$]*")
_HARMLESS_MAGICS: dict[str, re.Pattern[str]] = {
    "matplotlib": _ANY_ARGUMENT,
    "pinfo": _ANY_ARGUMENT,
    "pinfo2": _ANY_ARGUMENT,
    "load_ext": re.compile(r"\s*autoreload\s*"),
    "autoreload": re.compile(r"\s*(\d|now|off|on|all|complete|explicit|-p|-l|--print|--log)?\s*"),
    "config": re.compile(
        r"\s*InlineBackend\.\w+\s*=\s*('[\w.-]*'|\"[\w.-]*\"|[\d.]+|True|False)\s*"
    ),
}
_CODE_MAGICS = {"time", "timeit", "capture"}
_MAGIC_OPTION = re.compile(r"^\s*-[a-zA-Z]+(?:\s*\d+)?(?=\s|$)")
# Shell commands that only report on the machine or the notebook's folder, with plain arguments.
_SHELL_COMMAND = re.compile(
    r"\s*(ls|nvidia-smi|nproc|free|df|du|pwd|uname|lscpu|date|hostname)((?:\s+[\w./=:,+@%*-]+)*)\s*"
)
_PIP_OPTIONS = words("-q --quiet -U --upgrade --no-deps --user -v --verbose")
_PIP_PACKAGE = re.compile(r"[A-Za-z0-9][\w.\-\[\],=<>!~]*")
_SHELL_METHODS = ("system", "getoutput")
_MAGIC_METHODS = ("run_line_magic", "run_cell_magic")


def ipython_call(node: ast.Call) -> tuple[str, list[str]] | None:
    """(method, string arguments) of `get_ipython().method("...", ...)`, what IPython makes of
    `%magic`, `%%magic` and `!command`; None for any other call."""
    func = node.func
    if not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Call)
        and dotted_name(func.value.func) == "get_ipython"
        and node.args
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
    ):
        return None
    return func.attr, [argument.value for argument in node.args]


def magic_code(method: str, args: list[str]) -> list[str] | None:
    """The code `%time`, `%timeit` or `%%capture` runs, its options dropped; None for any other
    call."""
    if method not in _MAGIC_METHODS or len(args) < 2 or args[0] not in _CODE_MAGICS:
        return None
    pieces = []
    for code in args[1:]:
        while _MAGIC_OPTION.match(code):
            code = _MAGIC_OPTION.sub("", code, count=1)
        pieces.append(code)
    return pieces


def is_harmless(method: str, args: list[str]) -> bool:
    """Whether a magic or shell escape that runs no code of its own is one an honest lesson
    uses (`magic_code` gives the code of those that do)."""
    if method in _SHELL_METHODS:
        command = args[0]
        if command.split()[:1] == ["pip"]:
            return _is_plain_pip(command.split(None, 1)[1] if " " in command.strip() else "")
        return _shell_arguments(command) is not None
    if method not in _MAGIC_METHODS or len(args) < 2:
        return False
    magic, line = args[0], args[1]
    if magic == "pip":
        return _is_plain_pip(line)
    return magic in _HARMLESS_MAGICS and _HARMLESS_MAGICS[magic].fullmatch(line) is not None


def reaches_outside(method: str, args: list[str]) -> bool:
    """Whether a shell command an honest lesson uses is pointed at a place outside the
    notebook's folder (`!ls /`, `!du ..`)."""
    arguments = _shell_arguments(args[0]) if method in _SHELL_METHODS else None
    return any(
        OUTSIDE_FOLDER.match(argument) or ".." in argument.split("/")
        for argument in arguments or []
    )


def _shell_arguments(command: str) -> list[str] | None:
    """The arguments of one of the reporting commands with plain arguments, else None."""
    match = _SHELL_COMMAND.fullmatch(command)
    return None if match is None else match.group(2).split()


def _is_plain_pip(arguments: str) -> bool:
    """`pip list`, `pip show NAME`, `pip install NAME==1.0 -q`: packages by name, no paths."""
    tokens = arguments.split()
    if tokens[:1] in (["list"], ["freeze"], ["--version"]):
        return len(tokens) == 1
    if tokens[:1] not in (["install"], ["show"]) or len(tokens) < 2:
        return False
    return all(w in _PIP_OPTIONS or _PIP_PACKAGE.fullmatch(w) for w in tokens[1:])
