"""Exception groups: a nursery wraps what its body raised, even when it is the only exception.

`collapse_group(group)` gives back the one exception inside nested single-member groups (or the group itself when
there are several), so a caller sees its own exception rather than a wrapper of ours.
"""

from __future__ import annotations

__all__ = ["collapse_group"]


def collapse_group(group: BaseExceptionGroup[BaseException]) -> BaseException | BaseExceptionGroup[BaseException]:
    """The one exception inside nested single-member groups, or the group itself when there are several."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
