; PHP definitions.
; `namespace Foo;` (no body) is not captured; `namespace Foo { ... }` is.

(namespace_definition
  name: (namespace_name) @name
  body: (compound_statement)) @definition.module

(function_definition
  name: (name) @name) @definition.function

(class_declaration
  name: (name) @name) @definition.class

(interface_declaration
  name: (name) @name) @definition.interface

(trait_declaration
  name: (name) @name) @definition.trait

(enum_declaration
  name: (name) @name) @definition.enum

(method_declaration
  name: (name) @name) @definition.method
