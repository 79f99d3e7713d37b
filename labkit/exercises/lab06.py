"""Exercises of notebook 06 (sending files): a transform of your own, a chain on the server."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from PIL import Image

from labkit.exercises.base import AsyncExercise, NotYet, SyncExercise, await_learner, call_learner
from labkit.exercises.live import connect_learner
from labkit.labs.files import FileClient
from labkit.objects.sample import sample_image
from labkit.objects.store import ObjectStore
from labkit.objects.transforms import apply_transformation, encode_png, parse_transformation

THUMBNAIL_SIDE = 64
# The user the second check uploads as; the check empties its objects first.
FILES_USER = "exercise-files"
SAMPLE_NAME = "card.png"


def _first_difference(got: Image.Image, expected: Image.Image) -> tuple[int, int]:
    """The first pixel, row by row, where two images of one size and mode differ."""
    bands = len(expected.getbands())
    mine, theirs = got.tobytes(), expected.tobytes()
    index = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b), 0)
    pixel = index // bands
    return pixel % expected.width, pixel // expected.width


class Mirror(SyncExercise):
    number = 1
    title = "A transform of your own"
    answer_name = "mirror"
    prompt = (
        "Write `mirror(image)`, the server's next transformation: a new image with left and "
        "right swapped, like a reflection, the original left unchanged. The check runs it "
        "on the sample image and compares every pixel."
    )
    placeholder_code = (
        "from PIL import Image\n"
        "\n"
        "\n"
        "def mirror(image: Image.Image) -> Image.Image:\n"
        "    return ____  # a new image: left and right swapped"
    )
    hint_text = (
        "Pillow's `image.transpose(...)` takes an `Image.Transpose` member; look for the "
        "one that flips left and right (not top and bottom)."
    )
    solution_code = """\
from PIL import Image


def mirror(image: Image.Image) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
"""

    def verify(self, answer: object) -> str:
        sample = sample_image()
        given = sample.copy()
        result = call_learner(answer, given, what="mirror(<the sample image>)")
        if not isinstance(result, Image.Image):
            raise NotYet(f"mirror returned {type(result).__name__}; return a PIL image")
        if given.tobytes() != sample.tobytes():
            raise NotYet("mirror changed the image it was given; return a new one")
        expected = sample.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if result.size != expected.size or result.mode != expected.mode:
            raise NotYet(
                f"your image is {result.size[0]}×{result.size[1]} {result.mode}; a mirror "
                f"keeps the size and colours ({expected.size[0]}×{expected.size[1]} RGB)"
            )
        if result.tobytes() == expected.tobytes():
            return f"mirror swapped left and right in all {sample.width * sample.height:,} pixels"
        lookalikes = {
            "the image unchanged": sample,
            "the image upside down (flipped top to bottom)": sample.transpose(
                Image.Transpose.FLIP_TOP_BOTTOM
            ),
            "the image turned by 180°": sample.transpose(Image.Transpose.ROTATE_180),
        }
        for label, image in lookalikes.items():
            if result.tobytes() == image.tobytes():
                raise NotYet(f"mirror returned {label}; swap left and right only")
        x, y = _first_difference(result, expected)
        raise NotYet(
            f"pixel ({x}, {y}) is {result.getpixel((x, y))}; expected "
            f"{expected.getpixel((x, y))}, the original's pixel ({sample.width - 1 - x}, {y})"
        )


def _grey_thumbnail_of(image: Image.Image) -> Image.Image:
    """What the server makes of `image`: `color BW`, then a thumbnail of that."""
    grey = apply_transformation(image, parse_transformation("color", "BW"))
    return apply_transformation(grey, parse_transformation("thumbnail", str(THUMBNAIL_SIDE)))


class GreyThumbnail(AsyncExercise):
    sandbox_needs = ("server", "objects")
    number = 2
    title = "A chain of transformations"
    answer_name = "grey_thumbnail"
    prompt = (
        "The server transforms any object you own, its own results too. Write "
        "`grey_thumbnail(files, path)`: upload the image at `path`, have the server make "
        f"it grey (`color`, `BW`), then a {THUMBNAIL_SIDE}-pixel `thumbnail` *of the grey "
        "result*, and return that thumbnail downloaded. The check calls it with a fresh "
        "`FileClient` and looks in the object store for the server's work."
    )
    placeholder_code = (
        "from PIL import Image\n"
        "\n"
        "from labkit.labs.files import FileClient\n"
        "\n"
        "\n"
        "async def grey_thumbnail(files: FileClient, path: str) -> Image.Image:\n"
        "    return ____  # upload, transform twice on the server, download"
    )
    hint_text = (
        "`await files.upload(path)` returns the object's name; `await files.transform(...)` "
        "returns a URL whose last path segment is the result's name, which you can "
        "transform again; `await files.transformed(...)` also downloads."
    )
    solution_code = f"""\
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from PIL import Image

from labkit.labs.files import FileClient


async def grey_thumbnail(files: FileClient, path: str) -> Image.Image:
    name = await files.upload(path)
    grey_url = await files.transform(name, "color", "BW")
    grey_name = PurePosixPath(urlsplit(grey_url).path).name  # the server named its result
    return await files.transformed(grey_name, "thumbnail", "{THUMBNAIL_SIDE}")
"""

    async def verify(self, answer: object) -> str:
        sample = sample_image()
        store = ObjectStore.from_settings(self.settings)
        await asyncio.to_thread(_empty, store, f"{FILES_USER}/")
        with tempfile.TemporaryDirectory(prefix="labkit-exercise-") as folder:
            path = Path(folder) / SAMPLE_NAME
            path.write_bytes(encode_png(sample))
            async with connect_learner(self.settings, FILES_USER) as learner:
                files = FileClient(learner.nc, FILES_USER)
                try:
                    result = await await_learner(
                        answer, files, str(path), what="grey_thumbnail(files, path)"
                    )
                finally:
                    files.close()
        if not isinstance(result, Image.Image):
            raise NotYet(f"grey_thumbnail returned {type(result).__name__}; return a PIL image")
        expected = _grey_thumbnail_of(sample)
        if result.mode != "L":
            raise NotYet(
                f"your image is in colour (mode {result.mode}); have the server make it grey "
                "first: `color`, mode `BW`"
            )
        if result.size != expected.size:
            raise NotYet(
                f"your image is {result.size[0]}×{result.size[1]}; expected "
                f"{expected.size[0]}×{expected.size[1]}: a `thumbnail` with mode "
                f"'{THUMBNAIL_SIDE}'"
            )
        if result.tobytes() != expected.tobytes():
            raise NotYet(
                "your grey thumbnail's pixels differ from the server's: make the image grey "
                "first, then the thumbnail of the grey result"
            )
        keys = await asyncio.to_thread(store.list_keys, f"{FILES_USER}/")
        if not any(key.endswith(f".color-BW.thumbnail-{THUMBNAIL_SIDE}.png") for key in keys):
            raise NotYet(
                "the pixels are right, but the object store holds no thumbnail of a grey "
                f"image: ask the server for it, not Pillow here (objects: {keys})"
            )
        return (
            "the server made the grey image, then its thumbnail, and you downloaded it: "
            "every pixel as expected"
        )


def _empty(store: ObjectStore, prefix: str) -> None:
    for key in store.list_keys(prefix):
        store.delete(key)


ex1 = Mirror()
ex2 = GreyThumbnail()
EXERCISES = (ex1, ex2)
