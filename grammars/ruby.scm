; Ruby definitions.
; `def self.foo` is singleton_method (name field = foo). Methods inside
; `class << self` are plain `method` nodes inside a singleton_class (not captured).
; Class/module names may be scope_resolution (`Foo::Bar`), captured whole.

(class
  name: [(constant) (scope_resolution)] @name) @definition.class

(module
  name: [(constant) (scope_resolution)] @name) @definition.module

(method
  name: (_) @name) @definition.method

(singleton_method
  name: (_) @name) @definition.method
