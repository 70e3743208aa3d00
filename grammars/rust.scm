; Rust definitions.
; impl blocks: @name is the implementing type (`impl Trait for Type` -> Type).

(function_item
  name: (identifier) @name) @definition.function

(struct_item
  name: (type_identifier) @name) @definition.struct

(union_item
  name: (type_identifier) @name) @definition.struct

(enum_item
  name: (type_identifier) @name) @definition.enum

(trait_item
  name: (type_identifier) @name) @definition.trait

(impl_item
  type: [(type_identifier) (scoped_type_identifier) (primitive_type)] @name) @definition.impl

(impl_item
  type: (generic_type
    type: [(type_identifier) (scoped_type_identifier)] @name)) @definition.impl

(impl_item
  type: (reference_type
    type: [(type_identifier) (scoped_type_identifier)] @name)) @definition.impl

(mod_item
  name: (identifier) @name
  body: (declaration_list)) @definition.module

(type_item
  name: (type_identifier) @name) @definition.type

(macro_definition
  name: (identifier) @name) @definition.macro
