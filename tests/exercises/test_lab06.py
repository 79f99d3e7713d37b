"""Notebook 06's exercises refuse plausible wrong answers, saying why."""

from __future__ import annotations

import pytest
from PIL import Image, ImageOps

from labkit.exercises.lab06 import GreyThumbnail, Mirror
from labkit.labs.files import FileClient
from labkit.settings import Settings
from tests.exercises.checking import assert_not_yet, run_check


def mirror_in_place(image: Image.Image) -> Image.Image:
    image.paste(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    return image


def mirror_shifted(image: Image.Image) -> Image.Image:
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return ImageOps.expand(mirrored, border=(1, 0, 0, 0)).crop((0, 0, *image.size))


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (lambda image: image.transpose(Image.Transpose.FLIP_TOP_BOTTOM), "upside down"),
        (lambda image: image.rotate(180), "turned by 180°"),
        (lambda image: image, "mirror returned the image unchanged"),
        (mirror_in_place, "mirror changed the image it was given"),
        (lambda image: ImageOps.mirror(image.convert("L")), "320×240 L; a mirror keeps"),
        (
            mirror_shifted,
            "pixel (0, 0) is (0, 0, 0); expected (255, 0, 159), the original's pixel (319, 0)",
        ),
    ],
    ids=["top to bottom", "half a turn", "unchanged", "in place", "grey", "off by one"],
)
def test_mirror_wrong(answer: object, says: str) -> None:
    assert_not_yet(run_check(Mirror(), answer), says)


async def colour_thumbnail(files: FileClient, path: str) -> Image.Image:
    name = await files.upload(path)
    return await files.transformed(name, "thumbnail", "64")


async def grey_only(files: FileClient, path: str) -> Image.Image:
    name = await files.upload(path)
    return await files.transformed(name, "color", "BW")


async def thumbnail_here(files: FileClient, path: str) -> Image.Image:
    grey = await grey_only(files, path)
    grey.thumbnail((64, 64))
    return grey


def not_async(files: FileClient, path: str) -> None:
    return None


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (colour_thumbnail, "your image is in colour (mode RGB)"),
        (grey_only, "your image is 320×240; expected 64×48"),
        (thumbnail_here, "the object store holds no thumbnail of a grey image"),
        (not_async, "returned None at once: make it an `async def`"),
    ],
    ids=["colour", "full size", "thumbnail made here", "not async"],
)
def test_grey_thumbnail_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    result = run_check(GreyThumbnail(stack_settings), answer, with_lab_server=True)
    assert_not_yet(result, says)
