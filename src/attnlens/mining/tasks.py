"""The completion tasks and where each one's targets come from in a Java syntax tree.

Every syntactic target is a tree-sitter node (named or anonymous), so an operator, bracket or identifier
inside a comment or a string can never be chosen: comments and string contents are single nodes whose
insides are not tokenized by the grammar. `docs/tasks.md` gives each definition with examples.
"""

from __future__ import annotations

from attnlens.contracts.tasks import CURSOR_TASKS, TASKS, parse_tasks  # noqa: F401  (the one task list)

# Tasks whose targets are taken from tree-sitter captures of the query below (same names as captures).
QUERY_TASKS: tuple[str, ...] = CURSOR_TASKS

# Tasks whose target may contain string or character literal text (every other target must not).
STRING_TASKS: frozenset[str] = frozenset({"string_literals"})

NUMERIC_LITERAL_TYPES = (
    "decimal_integer_literal",
    "hex_integer_literal",
    "octal_integer_literal",
    "binary_integer_literal",
    "decimal_floating_point_literal",
    "hex_floating_point_literal",
)

# Operators are matched by the field they fill in their expression node, so `<` in `List<String>`
# (a type_arguments child) or `!` in `!=` never counts; only the tokens themselves are targets.
JAVA_TASK_QUERY = """
(identifier) @identifiers
(true) @boolean_literals
(false) @boolean_literals
[{numeric}] @numeric_literals
(string_literal) @string_literals
(character_literal) @string_literals
(binary_expression operator: ["&&" "||" "==" "!="] @boolean_operators)
(unary_expression operator: "!" @boolean_operators)
(binary_expression operator: ["+" "-" "*" "/" "%" "<" ">" "<=" ">="] @mathematical_operators)
(unary_expression operator: ["+" "-"] @mathematical_operators)
(update_expression ["++" "--"] @mathematical_operators)
(assignment_expression
  operator: ["+=" "-=" "*=" "/=" "%=" "&=" "|=" "^=" "<<=" ">>=" ">>>="] @assignment_operators)
";" @eol
["}" ")" "]"] @closing_bracket
(method_invocation name: (identifier) @function_call)
(method_declaration name: (identifier) @function_name)
""".replace("{numeric}", " ".join(f"({t})" for t in NUMERIC_LITERAL_TYPES))

# Ranges that non-string targets may not touch, and ranges no target may touch.
JAVA_TEXT_QUERY = """
(line_comment) @comment
(block_comment) @comment
(string_literal) @string
(character_literal) @string
(ERROR) @error
"""

# A `;` that separates the parts of a loop or resource header is not the end of a line of code.
EOL_EXCLUDED_PARENTS = frozenset({"for_statement", "resource_specification"})

RANDOM_MIN_TOKENS = 3
RANDOM_MAX_TOKENS = 10
