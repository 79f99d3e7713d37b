"""ipywidgets panels for the notebooks; each one can be driven from code as well as clicked."""

from labkit.widgets.stack_status import StackStatusPanel

__all__ = ["StackStatusPanel"]
