"""One stable name per attention head: `L{layer}H{head}`, zero-based, used everywhere."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from attnlens.errors import HeadOutOfRange

_HEAD_NAME = re.compile(r"^L(\d+)H(\d+)$")


@dataclass(frozen=True, order=True)
class HeadRef:
    """A query head of one layer."""

    layer: int
    head: int

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, name: str) -> HeadRef:
        """`"L12H3"` -> `HeadRef(12, 3)`; anything else raises `HeadOutOfRange`."""
        match = _HEAD_NAME.match(name.strip()) if isinstance(name, str) else None
        if match is None:
            raise HeadOutOfRange(f"{name!r} is not a head name; write heads as L<layer>H<head>, e.g. L3H0.")
        return cls(int(match.group(1)), int(match.group(2)))

    def check(self, n_layers: int, n_heads: int) -> HeadRef:
        """Return self, or raise `HeadOutOfRange` if the model has no such head."""
        if not (0 <= self.layer < n_layers and 0 <= self.head < n_heads):
            raise HeadOutOfRange(
                f"{self.name} is out of range: this model has layers 0-{n_layers - 1} "
                f"and heads 0-{n_heads - 1} per layer."
            )
        return self


def parse_heads(names: Iterable[str | HeadRef], n_layers: int, n_heads: int) -> frozenset[HeadRef]:
    """Parse and range-check head names; duplicates collapse."""
    refs = (n if isinstance(n, HeadRef) else HeadRef.parse(n) for n in names)
    return frozenset(r.check(n_layers, n_heads) for r in refs)
