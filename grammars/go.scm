; Go definitions.
; Methods are top-level in Go: the receiver type is NOT a containing node.
; Receiver type: method_declaration receiver: (parameter_list
;   (parameter_declaration type: [(type_identifier) (pointer_type (type_identifier)) (generic_type ...)])).
; Type declarations: the type_spec / type_alias inside type_declaration is the
; definition (a grouped `type ( ... )` holds several).

(function_declaration
  name: (identifier) @name) @definition.function

(method_declaration
  name: (field_identifier) @name) @definition.method

(type_spec
  name: (type_identifier) @name
  type: (struct_type)) @definition.struct

(type_spec
  name: (type_identifier) @name
  type: (interface_type)) @definition.interface

(type_spec
  name: (type_identifier) @name
  type: [(type_identifier) (qualified_type) (generic_type) (pointer_type) (array_type)
         (slice_type) (map_type) (channel_type) (function_type) (parenthesized_type)
         (negated_type)]) @definition.type

(type_alias
  name: (type_identifier) @name) @definition.type
