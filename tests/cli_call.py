"""Run the `harness` CLI in-process from a test, as a user's shell would call it."""

import sys

from harness.cli import main


def call(monkeypatch, capsys, *args):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["harness", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err
