"""The git pre-commit hook: test suggestions for the staged change, never in the way of the commit."""
