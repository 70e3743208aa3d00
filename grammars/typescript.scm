; TypeScript definitions (also used, with JSX, by tsx.scm).
; Exported declarations (export_statement) contain the declaration node, so the
; plain patterns below match them; the export keyword is on the same line.

(function_declaration
  name: (identifier) @name) @definition.function

(generator_function_declaration
  name: (identifier) @name) @definition.function

(function_signature
  name: (identifier) @name) @definition.function

(class_declaration
  name: (type_identifier) @name) @definition.class

(abstract_class_declaration
  name: (type_identifier) @name) @definition.class

(method_definition
  name: [(property_identifier) (private_property_identifier) (computed_property_name)] @name) @definition.method

; Overload signatures in a class body (folded into the implementation that follows by the chunker)
(class_body
  (method_signature
    name: [(property_identifier) (private_property_identifier) (computed_property_name)] @name) @definition.method)

; Class fields holding a function: `handler = () => {}`
(public_field_definition
  name: [(property_identifier) (private_property_identifier)] @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.method

(interface_declaration
  name: (type_identifier) @name) @definition.interface

(type_alias_declaration
  name: (type_identifier) @name) @definition.type

(enum_declaration
  name: (identifier) @name) @definition.enum

; `namespace Foo {}` / `module Foo {}` / `declare module "foo" {}`
(internal_module
  name: [(identifier) (nested_identifier) (string)] @name) @definition.module

(module
  name: [(identifier) (nested_identifier) (string)] @name) @definition.module

; `const f = () => {}` / `let f = function () {}` / `const C = class {}`
; (single declarator only; the whole declaration is the definition)
(lexical_declaration
  .
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])
  .) @definition.function

(variable_declaration
  .
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])
  .) @definition.function

(lexical_declaration
  .
  (variable_declarator
    name: (identifier) @name
    value: (class))
  .) @definition.class
