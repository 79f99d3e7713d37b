"""Start, check and stop the processes of a labkit stack (see `Stack`)."""

from labkit.stack.errors import ComponentFailed, StackError
from labkit.stack.manager import ComponentStatus, Stack
from labkit.stack.state import component_record

__all__ = ["ComponentFailed", "ComponentStatus", "Stack", "StackError", "component_record"]
