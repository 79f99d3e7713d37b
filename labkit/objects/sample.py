"""The course's sample image, drawn by code (so it is ours to ship, under the repo's licence).

`notebooks/images/sample.png` is `sample_image()` saved as PNG; a test checks
that the two still agree pixel for pixel. Every pixel is distinct in red, green
and blue, so a transform that mixes up channels or positions shows.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 320, 240
FILE_NAME = "sample.png"


def sample_image(width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """An RGB test card: a red-green gradient, a blue band, and three bars."""
    image = Image.new("RGB", (width, height))
    pixels = [
        (x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 64 + 96)
        for y in range(height)
        for x in range(width)
    ]
    image.putdata(pixels)
    draw = ImageDraw.Draw(image)
    bar = max(width // 10, 1)
    for index, colour in enumerate(((230, 40, 40), (40, 200, 60), (40, 80, 230))):
        left = bar + index * 2 * bar
        draw.rectangle((left, height // 4, left + bar - 1, height * 3 // 4), fill=colour)
    draw.rectangle((0, height - height // 8, width - 1, height - 1), fill=(20, 20, 20))
    return image
