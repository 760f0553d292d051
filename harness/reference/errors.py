"""Why a reference can fail (DESIGN §6): each is a UserError, so the CLI prints one line and the
runs of that problem are not scored."""

from __future__ import annotations

from harness.api import UserError


class ReferenceFailed(UserError):
    """No certified reference for these parameters: runs are not scored, the CLI says why."""


class BoxTooSmall(ReferenceFailed):
    """The state reaches the edge of every box tried (it would wrap around the periodic grid)."""


class NotCertified(ReferenceFailed):
    """Refinement did not bring the difference of two grid runs under the tolerance."""


class GridTooLarge(ReferenceFailed):
    """The certified grid would not fit the memory budget: past what a grid can hold, only
    problems with an exact solution are scored (DESIGN §6)."""
