"""Run the attnlens CLI with one function made to SIGKILL its own process at a chosen call: the fault tests'
way to die at a named point (inside a transaction, before an index save...) rather than at a random time.

    python -m tests.faults.kill_at MODULE:NAME CALL before|after -- <attnlens arguments>

`MODULE:NAME` is the name as the caller looks it up (patch where it is used, not where it is defined).
Nothing of this is in the package: production code carries no fault hooks.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def killing(original: Callable[..., Any], call: int, when: str) -> Callable[..., Any]:
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call and when == "before":
            die()
        result = original(*args, **kwargs)
        if calls == call and when == "after":
            die()
        return result

    return wrapper


def main(argv: list[str]) -> None:
    target, call, when = argv[0], int(argv[1]), argv[2]
    if when not in ("before", "after") or argv[3] != "--":
        raise SystemExit(__doc__)
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    setattr(module, name, killing(getattr(module, name), call, when))
    from attnlens.cli import main as attnlens

    attnlens(argv[4:])


if __name__ == "__main__":
    main(sys.argv[1:])
