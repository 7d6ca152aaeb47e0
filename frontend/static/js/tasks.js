// The mining tasks (docs/tasks.md); `noise` is the control whose predictor must sit at chance.
export const TASKS = ["identifiers", "boolean_literals", "numeric_literals", "string_literals", "boolean_operators", "mathematical_operators",
  "assignment_operators", "eol", "closing_bracket", "function_call", "function_name", "random", "noise"];
