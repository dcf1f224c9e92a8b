"""Caps on what a cell may print or display, so that a runaway output costs nothing but itself.

Three layers, from the kernel outwards:

1. `cap_kernel_messages` (in the kernel): a single message larger than the per-cell budget is
   cut before it is sent, so an honest `print` of 100 MB arrives as 1 MB and a note.
2. `MESSAGE_LIMIT` (the grader's zmq sockets): a message larger than this is refused by zmq
   before it is read, whatever the kernel does; the cell then shows an error.
3. `CellOutputBudget` (the grader): outputs are counted as they arrive; past the budget they are
   dropped and one note says so. Autograded notebooks and feedback therefore hold at most about
   `OUTPUT_LIMIT` bytes per cell.
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode, from_dict

OUTPUT_LIMIT = 1_000_000
"""Bytes of output kept per cell."""

MESSAGE_LIMIT = 4 * OUTPUT_LIMIT
"""Bytes in one message above which the grader's sockets refuse it unread."""

# Messages that carry output, and the reply that repeats an error's traceback.
_CAPPED_MESSAGES = frozenset(
    ["stream", "display_data", "execute_result", "update_display_data", "error", "execute_reply"]
)


def _note(limit: int) -> str:
    return f"\n[output cut here: this cell produced more than {limit:,} bytes of output]\n"


def output_size(output: NotebookNode | dict) -> int:
    """Bytes of text and data in one output (a notebook output or a message's content)."""
    size = len(output.get("text", "")) + len(output.get("evalue", ""))
    size += sum(len(line) for line in output.get("traceback", []))
    for value in (output.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(str(value))
    return size


class CellOutputBudget:
    """Counts one cell's outputs as they arrive and keeps only the first `limit` bytes."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.used = 0
        self.exceeded = False

    def admit(self, output: NotebookNode) -> NotebookNode | None:
        """`output` if it fits (a stream is cut to fit), else None; the first refusal returns
        the note that says the output was cut. Errors are always kept: they decide the grade
        (the kernel has already cut a huge one)."""
        size = output_size(output)
        if output.get("output_type") == "error":
            self.used += size
            return output
        if self.exceeded:
            return None
        if self.used + size <= self.limit:
            self.used += size
            return output
        self.exceeded = True
        room = self.limit - self.used
        if output.get("output_type") == "stream" and room > 0:
            output.text = output.text[:room] + _note(self.limit)
            return output
        return from_dict({"output_type": "stream", "name": "stderr", "text": _note(self.limit)})


def as_graded_output(output: NotebookNode) -> NotebookNode:
    """`output` made neutral for scoring: a stderr stream becomes stdout and a result (the value
    of a last expression) becomes a plain display, text and data kept.

    nbgrader scores a graded cell 0 for any stderr output, so a warning would cost an honest
    answer its points; and it reads the first result of a test cell as its score (a number is
    partial credit, any other text full marks, a number above the cell's points stops the
    grading), whatever error follows, so an answer that displays something would score. In
    graded cells only errors decide.
    """
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        output.name = "stdout"
    elif output.get("output_type") == "execute_result":
        output.output_type = "display_data"
        output.pop("execution_count", None)
    return output


def cap_kernel_messages(session, limit: int = OUTPUT_LIMIT) -> None:
    """Make the kernel's `session` cut any output message larger than `limit` bytes."""
    serialize = session.serialize

    def capped(msg, ident=None):
        content = msg.get("content")
        if msg.get("msg_type") in _CAPPED_MESSAGES and output_size(content) > limit:
            msg = {**msg, "content": _shrunk(content, limit)}
        return serialize(msg, ident)

    session.serialize = capped


def _shrunk(content: dict, limit: int) -> dict:
    content = dict(content)
    if "text" in content:
        content["text"] = content["text"][:limit] + _note(limit)
    if "evalue" in content:
        content["evalue"] = content["evalue"][: limit // 2] + _note(limit)
        content["traceback"] = [content["evalue"]]
    if "data" in content:
        content["data"] = {"text/plain": _note(limit).strip()}
    return content
