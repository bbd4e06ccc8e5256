"""Nurture's icons, drawn in code so they can be regenerated and their pixels tested.

Teams wants `color.png` 192×192 (the symbol inside the central 96×96, on a solid or transparent background) and
`outline.png` 32×32, pure white on a fully transparent background.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ACCENT = (46, 125, 50)  # #2E7D32, also the manifest's accentColor
WHITE = (255, 255, 255)
SUPERSAMPLE = 8


def _sprout_mask(size: int, box: tuple[float, float, float, float]) -> Image.Image:
    """A sprout (stem and two leaves) as an antialiased alpha mask, fitted in `box` (fractions of `size`)."""
    big = size * SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    left, top, right, bottom = (v * big for v in box)
    width, height = right - left, bottom - top

    def at(x: float, y: float) -> tuple[float, float]:
        return left + x * width, top + y * height

    stem = max(1.0, width * 0.09)
    draw.line([at(0.5, 0.98), at(0.5, 0.42)], fill=255, width=round(stem))
    draw.ellipse([*at(0.44, 0.93), *at(0.56, 1.0)], fill=255)  # rounded foot
    draw.ellipse([*at(0.02, 0.18), *at(0.52, 0.56)], fill=255)  # left leaf
    draw.ellipse([*at(0.48, 0.0), *at(0.98, 0.40)], fill=255)  # right leaf
    return mask.resize((size, size), Image.Resampling.LANCZOS)


def color_icon() -> Image.Image:
    """192×192: white sprout within the central 96×96 on the accent colour."""
    size = 192
    image = Image.new("RGBA", (size, size), (*ACCENT, 255))
    symbol = _sprout_mask(size, (0.27, 0.28, 0.73, 0.73))  # margin for the antialiasing filter
    image.paste(Image.new("RGBA", (size, size), (*WHITE, 255)), (0, 0), symbol)
    return image


def outline_icon() -> Image.Image:
    """32×32: every pixel white, the shape carried by alpha alone (edges antialiased, background fully clear)."""
    size = 32
    alpha = _sprout_mask(size, (0.06, 0.06, 0.94, 0.94))
    image = Image.new("RGBA", (size, size), (*WHITE, 0))
    image.putalpha(alpha)
    return image


def write_icons(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    color, outline = folder / "color.png", folder / "outline.png"
    color_icon().save(color, optimize=True)
    outline_icon().save(outline, optimize=True)
    return color, outline


def rgba_pixels(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Every pixel as (r, g, b, a), row by row."""
    data = image.convert("RGBA").tobytes()
    return [(data[i], data[i + 1], data[i + 2], data[i + 3]) for i in range(0, len(data), 4)]
