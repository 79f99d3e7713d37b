"""`python -m labkit.classroom.dashboard`: the dashboard as JupyterHub starts it."""

from labkit.classroom.dashboard.app import main

main()
