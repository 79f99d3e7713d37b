"""The file lab's panel: upload an image, pick a transformation, see before and after.

Everything a click does is a method too: `await panel.load(path_or_bytes)` uploads
(as the upload control does) and `await panel.apply()` transforms (as the button
does); `before`, `after`, `crop` and `messages` are readable, so a notebook cell
can drive the panel and assert on what it shows. A click cannot await, and in the
browser it arrives on a kernel subshell's thread and loop (see
`labkit.widgets.callbacks`): the panel hands the work to the loop that runs the cells,
captured when it is built; `await panel.idle()` waits for it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from PIL import Image

from labkit.labs.files import FileClient
from labkit.objects.transforms import COLOR_MODES, ROTATIONS, TRANSFORMATIONS, open_image
from labkit.widgets.base import LogView
from labkit.widgets.callbacks import CellLoop, NoCellLoop
from labkit.widgets.typed import quoted

MODES: dict[str, tuple[str, ...]] = {
    "crop": ("",),
    "color": COLOR_MODES,
    "rotate": ROTATIONS,
    "thumbnail": ("64", "128", "256"),
}


@dataclass(frozen=True)
class Controls:
    """Which controls a transformation uses: the mode dropdown, the crop sliders."""

    mode: bool
    crop: bool


def controls_for(transformation: str) -> Controls:
    """The controls `transformation` reads; the panel disables the others.

    Only `crop` reads the crop sliders; the mode dropdown counts when the
    transformation has modes to pick from (`crop` has none).
    """
    return Controls(mode=any(MODES.get(transformation, ())), crop=transformation == "crop")


def _preview_layout() -> Any:
    # Hidden until there is an image: an empty Image widget draws a broken-image icon.
    return widgets.Layout(max_width="360px", border="1px solid #ccc", display="none")


def _column_layout() -> Any:
    # Room between the controls, the "before" and the "after" columns and their captions.
    return widgets.Layout(margin="0 0 0 1.5em", min_width="12em")


class FilesPanel:
    """Upload control, transformation and mode dropdowns, crop sliders, two images."""

    def __init__(self, client: FileClient, transformation: str = "color") -> None:
        self.client = client
        self.name: str | None = None
        self.before: Image.Image | None = None
        self.after: Image.Image | None = None
        self.last_url: str | None = None
        self.errors: list[str] = []
        self._cell_loop = CellLoop()

        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload")
        self.upload.observe(self._on_upload, names="value")
        self.transformation = widgets.Dropdown(
            options=TRANSFORMATIONS, value=transformation, description="transform"
        )
        self.mode = widgets.Dropdown(options=MODES[transformation], description="mode")
        self.transformation.observe(self._on_transformation, names="value")
        self.crop_x = widgets.IntRangeSlider(description="crop x", min=0, max=1, value=(0, 1))
        self.crop_y = widgets.IntRangeSlider(description="crop y", min=0, max=1, value=(0, 1))
        self.apply_button = widgets.Button(description="Transform", button_style="primary")
        self.apply_button.on_click(lambda _button: self._schedule(self.apply()))
        self.before_view = widgets.Image(format="png", layout=_preview_layout())
        self.after_view = widgets.Image(format="png", layout=_preview_layout())
        self.before_caption = widgets.Label("before: nothing uploaded yet")
        self.after_caption = widgets.Label("after: not transformed yet")
        # `out` keeps the lines; `log.view` shows them in order, the newest in view.
        self.log = LogView(max_height="8em")
        self.out = self.log.out
        controls = widgets.VBox(
            [
                self.upload,
                self.transformation,
                self.mode,
                self.crop_x,
                self.crop_y,
                self.apply_button,
            ]
        )
        images = widgets.HBox(
            [
                widgets.VBox([self.before_caption, self.before_view], layout=_column_layout()),
                widgets.VBox([self.after_caption, self.after_view], layout=_column_layout()),
            ]
        )
        self.widget = widgets.VBox(
            [widgets.HTML("<b>sending files</b>"), widgets.HBox([controls, images]), self.log.view]
        )
        self._on_transformation({"new": transformation})

    # what a notebook cell reads
    @property
    def crop(self) -> tuple[int, int, int, int]:
        """The crop box the sliders show: (left, top, right, bottom)."""
        (left, right), (top, bottom) = self.crop_x.value, self.crop_y.value
        return int(left), int(top), int(right), int(bottom)

    @property
    def messages(self) -> list[str]:
        text = "".join(str(output.get("text", "")) for output in self.out.outputs)
        return text.splitlines()

    # what the controls do
    async def load(self, source: bytes | Path | str, name: str | None = None) -> str:
        """Upload `source` (a path or bytes) and show it as the 'before' image."""
        data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
        name = name or (Path(source).name if isinstance(source, (str, Path)) else None)
        if name is None:
            raise ValueError("give a name when loading bytes, e.g. name='cat.png'")
        try:
            # Opened here first: what is not an image is refused before any upload.
            image = await asyncio.to_thread(open_image, data, self.client.limits)
            await self.client.upload(data, name)
        except Exception as exc:
            self._report(f"upload of {quoted(name)} failed: {exc}")
            raise
        self.name, self.before, self.after = name, image, None
        self._show(self.before_view, self.before_caption, "before", image)
        self.after_view.value = b""
        self.after_view.layout.display = "none"
        self.after_caption.value = "after: not transformed yet"
        width, height = image.size
        for slider, size in ((self.crop_x, width), (self.crop_y, height)):
            slider.max = size
            slider.value = (0, size)
        self._say(f"uploaded {quoted(name)} ({len(data):,} bytes, {width}×{height})")
        return name

    async def apply(self) -> Image.Image:
        """Transform the uploaded image as the controls say and show the result."""
        if self.name is None:
            self._report("upload an image first")
            raise RuntimeError("upload an image first: `await panel.load(path)`")
        kind, mode = self.transformation.value, self.mode.value or ""
        crop = self.crop if kind == "crop" else None
        label = f"{kind} {mode}".strip() + (f" {crop}" if crop else "")
        try:
            self.last_url = await self.client.transform(self.name, kind, mode, crop)
            result = await self.client.download(self.last_url)
        except Exception as exc:
            self._report(f"{label} failed: {exc}")
            raise
        self.after = result
        self._show(self.after_view, self.after_caption, "after", result)
        self._say(f"{label}: {result.size[0]}×{result.size[1]} {result.mode}")
        return result

    async def idle(self) -> None:
        """Wait until the uploads and transforms started by clicks have finished."""
        await self._cell_loop.wait()

    # display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return f"FilesPanel(user={self.client.user!r}, image={self.name!r})"

    # internals
    def _on_transformation(self, change: dict[str, Any]) -> None:
        kind = change["new"]
        self.mode.options = MODES[kind]
        self.mode.value = MODES[kind][0]
        used = controls_for(kind)
        self.mode.disabled = not used.mode
        self.crop_x.disabled = self.crop_y.disabled = not used.crop

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if files:
            chosen = files[0]
            self._schedule(self.load(bytes(chosen["content"]), str(chosen["name"])))

    def _schedule(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a click's work on the cell loop, from whichever thread the click came."""
        try:
            future = self._cell_loop.submit(work)
        except NoCellLoop as exc:
            self._report(str(exc))
            return
        # The error is already in the panel; a click has no caller to raise to.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())

    def _show(self, view: Any, caption: Any, label: str, image: Image.Image) -> None:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        view.value = buffer.getvalue()
        view.layout.display = None
        caption.value = f"{label}: {image.size[0]}×{image.size[1]}, {image.mode}"

    def _say(self, line: str) -> None:
        self.log.say(line)

    def _report(self, line: str) -> None:
        self.errors.append(line)
        self.log.error(line)
