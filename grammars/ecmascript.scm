; Shared by javascript.scm, typescript.scm and tsx.scm (languages.toml lists both files).

; A function assigned to a property: `Foo.prototype.bar = function () {}`, `exports.f = () => {}`,
; `module.exports = function () {}` (CommonJS and prototype-style code defines most functions this way)
(expression_statement
  (assignment_expression
    left: (member_expression) @name
    right: [(arrow_function) (function_expression) (generator_function)])) @definition.function

; An object of methods assigned to a property, `Foo.prototype = { bar: function () {} }`: a class whose
; members are the functions of its pairs
(expression_statement
  (assignment_expression
    left: (member_expression) @name
    right: (object (pair value: [(arrow_function) (function_expression) (generator_function)])))) @definition.class

; A function-valued pair of an object literal: `{ parse: function (s) {} }`
(pair
  key: [(property_identifier) (string) (computed_property_name)] @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.method
