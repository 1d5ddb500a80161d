"""CLI verbs, one module each; see optimlab/cli.py."""
