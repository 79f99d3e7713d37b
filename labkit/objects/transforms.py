"""Image transformations: pure Pillow functions on bytes, no IO, no event loop.

`parse_transformation` checks a request before any image is read (so a bad one
changes nothing); `transform_image_bytes` does the rest: open under explicit
limits, apply, encode as PNG. It is CPU-bound: the file lab runs it on a bounded
pool of its own (`labkit.labs.image_work`) so one large image does not stall other
users' requests.

| transformation | mode | result |
|---|---|---|
| `crop` | (none) | the `crop` box: left, top, right, bottom in pixels, right/bottom excluded |
| `color` | `BW`, `RED`, `GREEN`, `BLUE` | `BW`: one grey band; else that channel, others 0 |
| `rotate` | `90` (default), `180`, `270` | a clockwise turn by that many degrees |
| `thumbnail` | the longest side in pixels, default `128` | a smaller copy, aspect ratio kept |
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from labkit.objects.errors import InvalidTransformation, NotAnImage, ObjectTooLarge

TRANSFORMATIONS = ("crop", "color", "rotate", "thumbnail")
COLOR_MODES = ("BW", "RED", "GREEN", "BLUE")
ROTATIONS = ("90", "180", "270")
DEFAULT_ROTATION = "90"
DEFAULT_THUMBNAIL = "128"
MAX_THUMBNAIL = 4096
# Modes worked on as they are; the others (palette, CMYK, 16-bit...) become RGB or RGBA.
_WORKING_MODES = {"L", "LA", "RGB", "RGBA"}
# Clockwise turns, as photo apps mean them (Pillow's ROTATE_90 turns counter-clockwise).
_CLOCKWISE = {
    "90": Image.Transpose.ROTATE_270,
    "180": Image.Transpose.ROTATE_180,
    "270": Image.Transpose.ROTATE_90,
}
_CHANNELS = {"RED": 0, "GREEN": 1, "BLUE": 2}


@dataclass(frozen=True)
class Box:
    """A crop box in pixels: `left <= x < right`, `top <= y < bottom`."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def size(self) -> tuple[int, int]:
        return self.right - self.left, self.bottom - self.top

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.right, self.bottom


@dataclass(frozen=True)
class Transformation:
    """A checked request: what to do, its mode, and the crop box for `crop`."""

    name: str
    mode: str = ""
    box: Box | None = None

    @property
    def label(self) -> str:
        """A short, file-name-safe description: `color-BW`, `crop-0-0-64-48`, `rotate-90`."""
        if self.box is not None:
            return "crop-" + "-".join(str(v) for v in self.box.as_tuple())
        return f"{self.name}-{self.mode}" if self.mode else self.name


@dataclass(frozen=True)
class ImageLimits:
    """What the server agrees to open: bytes of the file, pixels of the decoded image."""

    max_pixels: int = 25_000_000
    max_bytes: int = 20 * 1024**2


def parse_transformation(name: str, mode: str = "", box: Box | None = None) -> Transformation:
    """Check a transformation request (without the image); raise InvalidTransformation if wrong.

    Names and modes are case-insensitive. A crop box given with another
    transformation is ignored (seed clients always send one).
    """
    kind = name.strip().lower()
    mode = mode.strip().upper()
    if kind == "crop":
        if box is None:
            raise InvalidTransformation("crop needs a crop box: left, top, right, bottom")
        if mode:
            raise InvalidTransformation(f"crop takes no mode, got {mode!r}")
        if min(box.as_tuple()) < 0:
            raise InvalidTransformation(f"the crop box {box.as_tuple()} has a negative coordinate")
        if box.right <= box.left or box.bottom <= box.top:
            raise InvalidTransformation(
                f"the crop box {box.as_tuple()} is empty: right must exceed left and "
                "bottom must exceed top"
            )
        return Transformation("crop", "", box)
    if kind == "color":
        if mode not in COLOR_MODES:
            raise InvalidTransformation(
                f"unknown color mode {mode!r}; use one of {', '.join(COLOR_MODES)}"
            )
        return Transformation("color", mode)
    if kind == "rotate":
        mode = mode or DEFAULT_ROTATION
        if mode not in ROTATIONS:
            raise InvalidTransformation(
                f"unknown rotate mode {mode!r}; use one of {', '.join(ROTATIONS)} "
                "(degrees, clockwise)"
            )
        return Transformation("rotate", mode)
    if kind == "thumbnail":
        mode = mode or DEFAULT_THUMBNAIL
        if not mode.isdecimal() or not 1 <= int(mode) <= MAX_THUMBNAIL:
            raise InvalidTransformation(
                f"unknown thumbnail mode {mode!r}; give the longest side in pixels, "
                f"1 to {MAX_THUMBNAIL}"
            )
        return Transformation("thumbnail", str(int(mode)))
    raise InvalidTransformation(
        f"unknown transformation {name!r}; use one of {', '.join(TRANSFORMATIONS)}"
    )


def guard_pixels(limits: ImageLimits) -> None:
    """Set Pillow's decompression-bomb guard explicitly from the limits (process-wide).

    Pillow warns above MAX_IMAGE_PIXELS and refuses twice that; `open_image` refuses
    anything above the limit itself, before decoding, with an error a learner can read.
    """
    Image.MAX_IMAGE_PIXELS = limits.max_pixels


def header_pixels(data: bytes) -> int:
    """The pixels decoding `data` will hold, from its header alone (0 if it has none:
    `open_image` then says what is wrong)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return 0
    return width * height


def open_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """Decode `data` within the limits; raise NotAnImage or ObjectTooLarge."""
    if len(data) > limits.max_bytes:
        raise ObjectTooLarge(
            f"the file has {len(data):,} bytes; the limit is {limits.max_bytes:,} "
            "(LABKIT_S3_MAX_IMAGE_BYTES)"
        )
    guard_pixels(limits)
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(None, limits) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(
            "the file is not an image Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP...)"
        ) from exc
    width, height = image.size
    if width * height > limits.max_pixels:  # checked from the header, before decoding
        raise _too_many_pixels(image.size, limits)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(f"the image is damaged or truncated ({exc})") from exc
    if image.mode not in _WORKING_MODES:
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    return image


def apply_transformation(image: Image.Image, transformation: Transformation) -> Image.Image:
    """A new image: `transformation` applied to `image` (the input is left unchanged)."""
    kind, mode = transformation.name, transformation.mode
    if kind == "crop":
        box = transformation.box
        assert box is not None  # parse_transformation guarantees it
        width, height = image.size
        if box.right > width or box.bottom > height:
            raise InvalidTransformation(
                f"the crop box {box.as_tuple()} reaches outside the {width}×{height} image"
            )
        return image.crop(box.as_tuple())
    if kind == "color":
        if mode == "BW":
            return image.convert("L")
        rgb = image.convert("RGB")
        dark = Image.new("L", rgb.size, 0)
        bands = [dark, dark, dark]
        bands[_CHANNELS[mode]] = rgb.getchannel(_CHANNELS[mode])
        return Image.merge("RGB", bands)
    if kind == "rotate":
        return image.transpose(_CLOCKWISE[mode])
    if kind == "thumbnail":
        side = int(mode)
        result = image.copy()
        result.thumbnail((side, side))
        return result
    raise InvalidTransformation(f"unknown transformation {kind!r}")  # parse_* prevents this


def encode_png(image: Image.Image, compress_level: int = 1) -> bytes:
    """PNG bytes (lossless, so pixel checks are exact; level 1 favours speed over size)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def transform_image_bytes(
    data: bytes, transformation: Transformation, limits: ImageLimits
) -> bytes:
    """Open, transform and encode: the whole CPU-bound step, for `asyncio.to_thread`."""
    with open_image(data, limits) as image:
        return encode_png(apply_transformation(image, transformation))


def _too_many_pixels(size: tuple[int, int] | None, limits: ImageLimits) -> ObjectTooLarge:
    shown = f"{size[0]}×{size[1]} = {size[0] * size[1]:,} pixels" if size else "too many pixels"
    return ObjectTooLarge(
        f"the image has {shown}; the limit is {limits.max_pixels:,} (LABKIT_S3_MAX_IMAGE_PIXELS)"
    )
