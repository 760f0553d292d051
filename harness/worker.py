"""``python -m harness.worker IN OUT``: run one sweep request in this fresh process.

IN holds the pickled (Request, Reference); OUT receives the pickled result of
``runner.execute`` (record, prediction, checkpoint scores and diagnostics). A process of its
own per run keeps a crash or an OOM kill from taking the sweep down with it."""

import pickle
import sys
from pathlib import Path

from harness.runner import execute


def main(inp: str, out: str) -> None:
    request, reference = pickle.loads(Path(inp).read_bytes())
    result = execute(request.job(), reference, checkpoint_every=request.checkpoint_every)
    Path(out).write_bytes(pickle.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:3])
