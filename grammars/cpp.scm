; C++ definitions.
; Function names sit inside the declarator chain:
;   function_definition declarator: [pointer_declarator|reference_declarator]* function_declarator declarator: NAME
; NAME is identifier (free function / in-class ctor), field_identifier (in-class method),
; qualified_identifier (out-of-line `Foo::bar`, captured whole), destructor_name,
; operator_name. Templates: template_declaration wraps the definition; the inner
; node is captured.

(function_definition
  declarator: (function_declarator
    declarator: [(identifier) (field_identifier) (qualified_identifier)
                 (destructor_name) (operator_name)] @name)) @definition.function

(function_definition
  declarator: (pointer_declarator
    declarator: (function_declarator
      declarator: [(identifier) (field_identifier) (qualified_identifier)
                   (destructor_name) (operator_name)] @name))) @definition.function

(function_definition
  declarator: (reference_declarator
    (function_declarator
      declarator: [(identifier) (field_identifier) (qualified_identifier)
                   (destructor_name) (operator_name)] @name))) @definition.function

(class_specifier
  name: [(type_identifier) (qualified_identifier) (template_type)] @name
  body: (field_declaration_list)) @definition.class

(struct_specifier
  name: [(type_identifier) (qualified_identifier) (template_type)] @name
  body: (field_declaration_list)) @definition.struct

(union_specifier
  name: [(type_identifier) (qualified_identifier)] @name
  body: (field_declaration_list)) @definition.struct

(enum_specifier
  name: [(type_identifier) (qualified_identifier)] @name
  body: (enumerator_list)) @definition.enum

(namespace_definition
  name: [(namespace_identifier) (nested_namespace_specifier)] @name) @definition.module

(type_definition
  declarator: (type_identifier) @name) @definition.type

; `using Name = ...;`
(alias_declaration
  name: (type_identifier) @name) @definition.type

(concept_definition
  name: (identifier) @name) @definition.type

(preproc_function_def
  name: (identifier) @name) @definition.macro
