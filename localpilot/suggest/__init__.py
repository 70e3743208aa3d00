"""Test suggestions for a change: which functions and classes it touches, which tests already exercise them,
and a named test with the cases to check for the rest (the pre-commit hook and ``suggest-tests``)."""
