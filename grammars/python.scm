; Python definitions.
; Decorated definitions: the inner function/class is captured; the chunker
; extends upward over the decorator lines (parent node: decorated_definition).

(function_definition
  name: (identifier) @name) @definition.function

(class_definition
  name: (identifier) @name) @definition.class
