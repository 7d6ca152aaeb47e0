"""Window layout (FIM in PSM order, left-to-right) and hole alignment, on synthetic token streams."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.mining.tokens import FileTokens, is_char_boundary
from attnlens.mining.windows import align_hole, fim_window, l2r_window
from attnlens.model.target import FimTokens

FIM = FimTokens(prefix=1, middle=2, suffix=3)


def stream(n: int, width: int = 2) -> FileTokens:
    """n tokens with ids 100.. of `width` bytes each."""
    return FileTokens(ids=np.arange(100, 100 + n), starts=np.arange(n + 1) * width)


def hole_at(tokens: FileTokens, first: int, last: int | None = None):
    last = first if last is None else last
    return align_hole(tokens, int(tokens.starts[first]), int(tokens.starts[last + 1]))


def test_fim_window_is_balanced_in_the_middle_of_a_file():
    tokens = stream(100)
    window = fim_window(tokens, hole_at(tokens, 50, 51), 16, FIM)
    # 16 = 3 markers + 7 prefix + 6 suffix; the prefix gets the odd token, as in the paper (127 / 126).
    assert (window.n_prefix_tokens, window.n_suffix_tokens) == (7, 6)
    assert window.prompt_ids == [1, *range(143, 150), 3, *range(152, 158), 2]
    assert (window.start, window.end) == (43 * 2, 58 * 2)


def test_fim_window_at_the_paper_size():
    tokens = stream(1000)
    window = fim_window(tokens, hole_at(tokens, 500), 256, FIM)
    assert (window.n_prefix_tokens, window.n_suffix_tokens) == (127, 126)
    assert len(window.prompt_ids) == 256


def test_fim_window_near_the_file_start_keeps_the_whole_prefix_and_fills_with_suffix():
    tokens = stream(100)
    window = fim_window(tokens, hole_at(tokens, 3), 16, FIM)
    assert (window.n_prefix_tokens, window.n_suffix_tokens) == (3, 10)
    assert window.prompt_ids == [1, 100, 101, 102, 3, *range(104, 114), 2]
    assert window.prompt_ids.count(1) == 1  # no duplicated <fim_prefix> (the reference loader's quirk)
    at_start = fim_window(tokens, hole_at(tokens, 0), 16, FIM)
    assert at_start.n_prefix_tokens == 0 and at_start.prompt_ids[:2] == [1, 3]


def test_fim_window_near_the_file_end_grows_the_prefix():
    tokens = stream(100)
    window = fim_window(tokens, hole_at(tokens, 96), 16, FIM)
    assert (window.n_prefix_tokens, window.n_suffix_tokens) == (10, 3)
    assert window.prompt_ids[-5:] == [3, 197, 198, 199, 2]


def test_fim_window_needs_enough_tokens_around_the_hole():
    tokens = stream(14)
    # 16 = 3 markers + 13 file tokens; 14 tokens minus a 1-token hole leave exactly 13.
    fits = fim_window(tokens, hole_at(tokens, 5), 16, FIM)
    assert fits is not None and (fits.n_prefix_tokens, fits.n_suffix_tokens) == (5, 8)
    # A 2-token hole leaves 12: one short.
    assert fim_window(tokens, hole_at(tokens, 5, 6), 16, FIM) is None


def test_l2r_window_is_the_tokens_right_before_the_hole():
    tokens = stream(100)
    window = l2r_window(tokens, hole_at(tokens, 40), 16)
    assert window.prompt_ids == list(range(124, 140))
    assert (window.n_prefix_tokens, window.n_suffix_tokens) == (16, 0)
    assert l2r_window(tokens, hole_at(tokens, 16), 16) is not None
    assert l2r_window(tokens, hole_at(tokens, 15), 16) is None


def test_align_hole_widens_to_the_tokens_that_contain_the_span():
    # Tokens: "ab" " foo" "(" ");" -> bytes [0,2) [2,6) [6,7) [7,9)
    tokens = FileTokens(ids=np.array([5, 6, 7, 8]), starts=np.array([0, 2, 6, 7, 9]))
    exact = align_hole(tokens, 2, 6)
    assert (exact.first, exact.last, exact.start, exact.end, exact.alignment) == (1, 1, 2, 6, "exact")
    name = align_hole(tokens, 3, 6)  # "foo" without its space
    assert (name.start, name.end, name.alignment) == (2, 6, "widened:left=1,right=0")
    bracket = align_hole(tokens, 7, 8)  # ")" of ");"
    assert (bracket.first, bracket.last, bracket.alignment) == (3, 3, "widened:left=0,right=1")
    both = align_hole(tokens, 4, 7)
    assert (both.first, both.last, both.start, both.end) == (1, 2, 2, 7)


def test_char_boundaries():
    data = "aé😀".encode()
    assert [is_char_boundary(data, i) for i in range(len(data) + 1)] == [
        True,
        True,
        False,
        True,
        False,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize("context", [5, 8, 33])
def test_fim_window_length_is_exact_for_every_hole(context):
    tokens = stream(40)
    for first in range(40):
        window = fim_window(tokens, hole_at(tokens, first), context, FIM)
        assert window is not None and len(window.prompt_ids) == context
