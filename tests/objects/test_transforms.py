"""Image transforms as pure functions: the pixels each one must produce, and every refusal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from labkit.objects.errors import InvalidTransformation, NotAnImage, ObjectTooLarge
from labkit.objects.sample import FILE_NAME, sample_image
from labkit.objects.transforms import (
    COLOR_MODES,
    Box,
    ImageLimits,
    Transformation,
    apply_transformation,
    encode_png,
    open_image,
    parse_transformation,
    transform_image_bytes,
)

SAMPLE_PATH = Path(__file__).parents[2] / "notebooks" / "images" / FILE_NAME
LIMITS = ImageLimits()


def png(image: Image.Image) -> bytes:
    return encode_png(image)


@pytest.fixture(scope="module")
def sample() -> Image.Image:
    return sample_image()


def test_the_shipped_sample_is_the_generated_one(sample: Image.Image) -> None:
    with Image.open(SAMPLE_PATH) as shipped:
        assert shipped.size == sample.size and shipped.mode == "RGB"
        assert shipped.tobytes() == sample.tobytes()
    assert SAMPLE_PATH.stat().st_size < 50_000  # small enough to ship


def test_bw_has_one_band_of_luminance(sample: Image.Image) -> None:
    result = apply_transformation(sample, parse_transformation("color", "BW"))
    assert result.mode == "L" and result.getbands() == ("L",)
    assert result.tobytes() == sample.convert("L").tobytes()


@pytest.mark.parametrize(("mode", "band"), [("RED", 0), ("GREEN", 1), ("BLUE", 2)])
def test_a_colour_mode_keeps_that_channel_only(sample: Image.Image, mode: str, band: int) -> None:
    result = apply_transformation(sample, parse_transformation("color", mode))
    assert result.mode == "RGB" and result.size == sample.size
    for index in range(3):
        kept = result.getchannel(index).tobytes()
        if index == band:
            assert kept == sample.getchannel(index).tobytes()
        else:
            assert result.getchannel(index).getextrema() == (0, 0)


def test_crop_takes_the_box_right_and_bottom_excluded(sample: Image.Image) -> None:
    box = Box(10, 20, 74, 68)
    result = apply_transformation(sample, parse_transformation("crop", "", box))
    assert result.size == (64, 48)
    assert result.getpixel((0, 0)) == sample.getpixel((10, 20))
    assert result.getpixel((63, 47)) == sample.getpixel((73, 67))


def test_crop_of_the_whole_image_is_the_image(sample: Image.Image) -> None:
    box = Box(0, 0, *sample.size)
    result = apply_transformation(sample, parse_transformation("crop", box=box))
    assert result.tobytes() == sample.tobytes()


@pytest.mark.parametrize(
    ("mode", "corner"),
    # Where the source's top-left pixel lands after a clockwise turn.
    [("90", "top-right"), ("180", "bottom-right"), ("270", "bottom-left"), ("", "top-right")],
)
def test_rotate_turns_clockwise(sample: Image.Image, mode: str, corner: str) -> None:
    result = apply_transformation(sample, parse_transformation("rotate", mode))
    width, height = result.size
    assert result.size == (sample.size if mode == "180" else sample.size[::-1])
    spot = {
        "top-right": (width - 1, 0),
        "bottom-right": (width - 1, height - 1),
        "bottom-left": (0, height - 1),
    }[corner]
    assert result.getpixel(spot) == sample.getpixel((0, 0))


@pytest.mark.parametrize(("mode", "expected"), [("64", (64, 48)), ("", (128, 96)), ("4096", None)])
def test_thumbnail_fits_the_longest_side_and_never_enlarges(
    sample: Image.Image, mode: str, expected: tuple[int, int] | None
) -> None:
    result = apply_transformation(sample, parse_transformation("thumbnail", mode))
    assert result.size == (expected or sample.size)
    assert sample.size == (320, 240)  # the input is left as it was


def test_names_and_modes_are_case_insensitive() -> None:
    assert parse_transformation(" Color ", "bw") == Transformation("color", "BW")


def test_a_crop_box_sent_with_another_transformation_is_ignored() -> None:
    assert parse_transformation("color", "RED", Box(0, 0, 0, 0)).box is None


@pytest.mark.parametrize(
    ("name", "mode", "box", "message"),
    [
        ("blur", "", None, "unknown transformation 'blur'"),
        ("", "", None, "unknown transformation ''"),
        ("color", "PURPLE", None, "unknown color mode 'PURPLE'"),
        ("color", "", None, "unknown color mode ''"),
        ("rotate", "45", None, "unknown rotate mode '45'"),
        ("thumbnail", "0", None, "unknown thumbnail mode '0'"),
        ("thumbnail", "big", None, "unknown thumbnail mode 'BIG'"),
        ("thumbnail", "5000", None, "1 to 4096"),
        ("crop", "", None, "crop needs a crop box"),
        ("crop", "BW", Box(0, 0, 5, 5), "crop takes no mode"),
        ("crop", "", Box(0, 0, 0, 0), "is empty"),
        ("crop", "", Box(10, 10, 5, 20), "is empty"),
        ("crop", "", Box(10, 10, 20, 10), "is empty"),
        ("crop", "", Box(-1, 0, 5, 5), "negative"),
    ],
)
def test_bad_requests_are_refused_before_any_image_is_read(
    name: str, mode: str, box: Box | None, message: str
) -> None:
    with pytest.raises(InvalidTransformation, match=message):
        parse_transformation(name, mode, box)


@pytest.mark.parametrize("box", [Box(0, 0, 321, 240), Box(0, 0, 320, 241), Box(300, 200, 400, 300)])
def test_a_crop_box_outside_the_image_is_refused(sample: Image.Image, box: Box) -> None:
    with pytest.raises(InvalidTransformation, match="reaches outside the 320×240 image"):
        apply_transformation(sample, parse_transformation("crop", box=box))


def test_bytes_over_the_limit_are_refused_before_decoding() -> None:
    data = png(Image.new("RGB", (10, 10)))
    with pytest.raises(ObjectTooLarge, match="the limit is 10"):
        open_image(data, ImageLimits(max_bytes=10))


# Between the limit and twice it, Pillow also warns (and labkit refuses): expected here.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(101, 100), (300, 300)])
def test_pixels_over_the_limit_are_refused(size: tuple[int, int]) -> None:
    # (101, 100) trips our own check; (300, 300) is past twice the limit, Pillow's bomb guard.
    data = png(Image.new("L", size))
    with pytest.raises(ObjectTooLarge, match="the limit is 10,000"):
        open_image(data, ImageLimits(max_pixels=10_000))
    assert Image.MAX_IMAGE_PIXELS == 10_000  # the guard is set explicitly from the limits


def test_an_image_at_the_pixel_limit_is_fine() -> None:
    data = png(Image.new("L", (100, 100)))
    assert open_image(data, ImageLimits(max_pixels=10_000)).size == (100, 100)
    open_image(data, LIMITS)  # leave the guard at the default for the other tests


@pytest.mark.parametrize(
    "data", [b"", b"hello, not an image", b"%PDF-1.4\n" + bytes(100), b"GIF89a" + bytes(4)]
)
def test_what_is_not_an_image_is_refused(data: bytes) -> None:
    with pytest.raises(NotAnImage, match="not an image"):
        open_image(data, LIMITS)


def test_a_truncated_image_is_refused() -> None:
    data = png(sample_image())
    with pytest.raises(NotAnImage):
        open_image(data[: len(data) // 2], LIMITS)


def test_modes_png_cannot_store_are_converted() -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(buffer, format="JPEG")
    image = open_image(buffer.getvalue(), LIMITS)
    assert image.mode == "RGB"
    result = transform_image_bytes(buffer.getvalue(), parse_transformation("rotate"), LIMITS)
    assert Image.open(io.BytesIO(result)).format == "PNG"


@pytest.mark.parametrize("mode", COLOR_MODES)
def test_transparent_and_palette_images_transform(mode: str) -> None:
    rgba = Image.new("RGBA", (6, 4), (200, 100, 50, 128))
    for source in (rgba, rgba.convert("P"), rgba.convert("LA")):
        result = transform_image_bytes(png(source), parse_transformation("color", mode), LIMITS)
        assert Image.open(io.BytesIO(result)).size == (6, 4)


def test_labels_name_the_result_files() -> None:
    assert parse_transformation("color", "bw").label == "color-BW"
    assert parse_transformation("rotate").label == "rotate-90"
    assert parse_transformation("thumbnail", "064").label == "thumbnail-64"
    assert parse_transformation("crop", box=Box(1, 2, 3, 4)).label == "crop-1-2-3-4"
