"""Errors of the NetworkPolicy engine, each naming where in the input the problem is."""

from __future__ import annotations


class PolicyInvalid(ValueError):
    """An object the API server would reject; `path` is the field path inside the object."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class InputError(ValueError):
    """Bad input to a command (unreadable file, malformed model); the text names file and path."""
