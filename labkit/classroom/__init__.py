"""Classroom mode: one shared stack, a JupyterHub, and the instructor's side of a class."""
