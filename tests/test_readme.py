"""The README's Python example runs as printed."""

import re

from ftlib_course.config import ROOT


def test_readme_python_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README.md should show how to use ftlib"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "target accuracy" in capsys.readouterr().out
