; Bash definitions: `foo() { ... }` and `function foo { ... }`.

(function_definition
  name: (word) @name) @definition.function
