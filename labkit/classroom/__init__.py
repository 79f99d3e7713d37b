"""Classroom mode: one shared stack, a JupyterHub, one single-user server per learner."""
