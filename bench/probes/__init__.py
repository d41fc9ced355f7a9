"""Probes: one-off measurements quoted in the docs, one file each.

Each file's docstring starts with its purpose on one line (``python bench`` lists them)
and ends with the command that runs it (``python bench NAME --help`` for its options).
"""
