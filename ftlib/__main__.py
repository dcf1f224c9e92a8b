"""``python -m ftlib``: the project command line (``finetune``, ``predict``; see ``ftlib.cli``)."""

from ftlib.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
