"""Command-line entry points of lswag-lightning."""
