"""Widgets as static HTML, drawn from the state a run saved: the report works offline.

papermill saves every widget's state in the executed notebook. nbconvert would draw
the widgets from it with the widget manager's script, loaded from a CDN: no internet,
no widgets. Here each widget view becomes plain HTML of what it showed at the end of
the run (texts, tables, log lines, buttons, progress), which needs no script at all.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_REF = "IPY_MODEL_"
_BOX = "display:flex; gap:4px; flex-wrap:wrap; align-items:center"
_BUTTON = (
    "display:inline-block; padding:2px 10px; border:1px solid #aaa; border-radius:2px; "
    "background:#eee; font-size:90%"
)
_PRE = "margin:0; white-space:pre-wrap; font-size:85%"


def saved_states(notebook: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """model id -> {"model_name", "state"} as the run saved them (empty when none)."""
    widgets = notebook.get("metadata", {}).get("widgets") or {}
    states: dict[str, dict[str, Any]] = (widgets.get(WIDGET_STATE) or {}).get("state") or {}
    return states


def widget_html(model_id: str, states: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The widget `model_id` (and its children) as static HTML; None when not saved."""
    if model_id not in states:
        return None
    return _draw(model_id, states, depth=0)


def _draw(model_id: str, states: Mapping[str, Mapping[str, Any]], depth: int) -> str:
    model = states.get(model_id)
    if model is None or depth > 50:
        return ""
    name = str(model.get("model_name", ""))
    state: Mapping[str, Any] = model.get("state") or {}
    if _hidden(state, states):
        return ""
    text = html.escape(str(state.get("description") or ""))
    if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel", "AccordionModel"):
        children = [_draw(_id(child), states, depth + 1) for child in state.get("children", [])]
        inner = "".join(child for child in children if child)
        if name == "GridBoxModel":
            columns = _layout(state, states).get("grid_template_columns") or "auto"
            style = f"display:grid; grid-template-columns:{html.escape(columns)}; gap:2px 8px"
        else:
            direction = "column" if name == "VBoxModel" else "row"
            style = f"{_BOX}; flex-direction:{direction}"
            if direction == "column":
                style += "; align-items:flex-start"
        return f"<div style='{style}'>{inner}</div>"
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{state.get('value', '')}</div>"  # the widget's own HTML, as shown
    if name == "LabelModel":
        return f"<span>{html.escape(str(state.get('value', '')))}</span>"
    if name in ("ButtonModel", "ToggleButtonModel"):
        pressed = "; background:#ccc" if state.get("value") else ""
        faded = "; opacity:.5" if state.get("disabled") else ""
        return f"<span style='{_BUTTON}{pressed}{faded}'>{text}</span>"
    if name in ("TextModel", "TextareaModel", "PasswordModel"):
        value = "" if name == "PasswordModel" else html.escape(str(state.get("value", "")))
        label = f"{text} " if text else ""
        return f"<span>{label}<input disabled value='{value}'></span>"
    if name in ("IntProgressModel", "FloatProgressModel"):
        value, top = state.get("value", 0), state.get("max", 100)
        return f"<span>{text} <progress value='{value}' max='{top}'></progress></span>"
    if name == "OutputModel":
        return "".join(_output_html(output) for output in state.get("outputs", []))
    if "value" in state and not isinstance(state["value"], (dict, list)):
        label = f"{text}: " if text else ""
        return f"<span>{label}{html.escape(str(state['value']))}</span>"
    return f"<span>{text}</span>" if text else ""


def _output_html(output: Mapping[str, Any]) -> str:
    if output.get("output_type") == "stream":
        error = "; background:#fdd" if output.get("name") == "stderr" else ""
        return f"<pre style='{_PRE}{error}'>{html.escape(str(output.get('text', '')))}</pre>"
    data: Mapping[str, Any] = output.get("data") or {}
    if "text/html" in data:
        return f"<div>{_joined(data['text/html'])}</div>"
    if "image/png" in data:
        return f"<img src='data:image/png;base64,{_joined(data['image/png']).strip()}'>"
    if "text/plain" in data:
        return f"<pre style='{_PRE}'>{html.escape(_joined(data['text/plain']))}</pre>"
    return ""


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _id(reference: Any) -> str:
    return str(reference).removeprefix(_REF)


def _layout(state: Mapping[str, Any], states: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    layout = states.get(_id(state.get("layout", ""))) or {}
    found: Mapping[str, Any] = layout.get("state") or {}
    return found


def _hidden(state: Mapping[str, Any], states: Mapping[str, Mapping[str, Any]]) -> bool:
    return _layout(state, states).get("display") == "none"
