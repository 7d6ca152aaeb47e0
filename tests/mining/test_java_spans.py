"""Which spans of Java source each task targets: exact expectations on small snippets and our fixtures."""

from __future__ import annotations

import pytest

from attnlens.errors import InvalidInput
from attnlens.mining import TASKS, parse_tasks
from attnlens.mining.java import JavaParser, RangeSet
from tests.mining.checks import comment_and_string_ranges
from tests.mining.conftest import JAVA_FIXTURES


@pytest.fixture(scope="module")
def parser():
    return JavaParser()


def texts(parser, source: str, task: str) -> list[str]:
    data = source.encode()
    return [data[s.start : s.end].decode() for s in parser.parse(data).spans.get(task, [])]


def test_generics_are_not_comparisons_and_comments_and_strings_hold_no_targets(parser):
    source = (
        "class A { /* a < b && c */ // x || y == z )\n"
        ' Map<String, List<Integer>> m; boolean f() { return a < b ? "x || y)" : c >= d; } }'
    )
    assert texts(parser, source, "mathematical_operators") == ["<", ">="]
    assert texts(parser, source, "boolean_operators") == []
    assert texts(parser, source, "closing_bracket") == [")", "}", "}"]
    assert texts(parser, source, "string_literals") == ['"x || y)"']


def test_every_java_numeric_literal_form(parser):
    literals = [
        "42",
        "1_000",
        "9L",
        "0x1F",
        "0XcafeL",
        "017",
        "0b101",
        "0B1L",
        "3.5",
        "1e10",
        "1.5f",
        ".5d",
        "2.",
        "0x1.8p3",
        "0X1P-4f",
        "6.02E+23D",
    ]
    source = "class A { Object[] v = {" + ", ".join(literals) + "}; }"
    assert texts(parser, source, "numeric_literals") == literals


def test_boolean_and_string_literals_include_chars_and_text_blocks(parser):
    source = 'class A { boolean t = true, f = false; char c = \'}\'; String s = """\n  a && b\n  """; }'
    assert texts(parser, source, "boolean_literals") == ["true", "false"]
    assert texts(parser, source, "string_literals") == ["'}'", '"""\n  a && b\n  """']
    assert texts(parser, source, "boolean_operators") == []
    assert texts(parser, source, "closing_bracket") == ["}"]


def test_operators_are_the_papers_sets_with_the_fixed_alternatives(parser):
    source = (
        "class A { void f() { b = !a && c || d == e != g; x = -y + +z * w / v % u; i++; --j; "
        "k = a < b; k = a <= b; k = a > b; k = a >= b; x += 1; x -= 1; x *= 1; x /= 1; x %= 1; "
        "x &= 1; x |= 1; x ^= 1; x <<= 1; x >>= 1; x >>>= 1; x = 1; y = x << 1 >> 2 & 3 | 4 ^ 5; } }"
    )
    assert sorted(texts(parser, source, "boolean_operators")) == sorted(["!", "&&", "||", "==", "!="])
    assert sorted(texts(parser, source, "mathematical_operators")) == sorted(
        ["-", "+", "+", "*", "/", "%", "++", "--", "<", "<=", ">", ">="]
    )
    assert texts(parser, source, "assignment_operators") == [
        "+=",
        "-=",
        "*=",
        "/=",
        "%=",
        "&=",
        "|=",
        "^=",
        "<<=",
        ">>=",
        ">>>=",
    ]


def test_eol_is_a_statement_semicolon_and_its_newline_not_a_loop_header(parser):
    source = (
        "class A {\n  int x = 1;\n  void f() {\n    for (int i = 0;\n i < 3;\n i++) {}\n"
        "    try (R r = new R();\n R s = new R()) {}\n    g(); h();\r\n  }\n}\n"
    )
    # `g();` is followed by a space, not a newline: only `int x = 1;` and `h();` end lines.
    assert texts(parser, source, "eol") == [";\n", ";\r\n"]


def test_function_call_and_function_name(parser):
    source = "class A { int size() { return list.size() + Math.max(1, other()); } A() {} }"
    assert texts(parser, source, "function_name") == ["size"]
    assert texts(parser, source, "function_call") == ["size", "max", "other"]
    assert "A" in texts(parser, source, "identifiers")


def test_identifiers_are_unicode_aware_and_exclude_type_names(parser):
    source = 'class Größe { double π = 3.14; String 名前 = "x"; }'
    found = texts(parser, source, "identifiers")
    assert found == ["Größe", "π", "名前"]


def test_annotations_and_lambdas(parser):
    source = '@Deprecated(since = "9") class A { Runnable r = () -> g(x -> x * 2); }'
    assert texts(parser, source, "function_call") == ["g"]
    assert texts(parser, source, "mathematical_operators") == ["*"]
    assert texts(parser, source, "closing_bracket") == [")", ")", ")", "}"]
    assert texts(parser, source, "identifiers")[:2] == ["Deprecated", "since"]


def test_targets_inside_parse_errors_are_dropped_but_the_rest_of_the_file_is_used(parser):
    data = (JAVA_FIXTURES / "Broken.java").read_bytes()
    parsed = parser.parse(data)
    assert parsed.has_error and len(parsed.errors) > 0
    operators = [data[s.start : s.end].decode() for s in parsed.spans["mathematical_operators"]]
    assert "+" in operators  # `a + b` in the well-formed method
    for spans in parsed.spans.values():
        for span in spans:
            assert not parsed.errors.overlaps(span.start, span.end)


def test_no_fixture_target_lies_in_a_comment_or_string(parser):
    for file in sorted(JAVA_FIXTURES.rglob("*.java")):
        data = file.read_bytes()
        parsed = parser.parse(data)
        protected = comment_and_string_ranges(data)
        for task, spans in parsed.spans.items():
            for span in spans:
                for start, end, kind in protected:
                    if task == "string_literals" and kind in ("string_literal", "character_literal"):
                        continue
                    assert not (start < span.end and span.start < end), f"{file.name}: {task} in {kind}"


def test_fixtures_cover_every_syntactic_task(parser):
    covered = set()
    for file in JAVA_FIXTURES.rglob("*.java"):
        covered |= {task for task, spans in parser.parse(file.read_bytes()).spans.items() if spans}
    assert covered == set(TASKS) - {"random", "noise"}


def test_range_set_overlap():
    ranges = RangeSet([(10, 20), (15, 25), (40, 41)])
    assert len(ranges) == 2
    assert ranges.overlaps(24, 30) and ranges.overlaps(0, 11) and ranges.overlaps(40, 41)
    assert not ranges.overlaps(25, 40) and not ranges.overlaps(0, 10) and not ranges.overlaps(12, 12)


def test_parse_tasks():
    assert parse_tasks("all") == TASKS and parse_tasks(None) == TASKS
    assert parse_tasks("eol,identifiers") == ("identifiers", "eol")
    with pytest.raises(InvalidInput, match="unknown task"):
        parse_tasks("identifiers,keywords")
