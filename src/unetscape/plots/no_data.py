"""A panel with nothing to draw says why, in words wrapped to fit the panel."""

from __future__ import annotations

import textwrap

# Average width of a character as a fraction of the font size (DejaVu Sans, matplotlib's
# default), to wrap a text to the width of its panel.
CHAR_WIDTH = 0.6


def say_why(ax, text: str, fontsize: float = 8, color: str = "black") -> None:
    """Clear a panel (its title stays) and write `text` in its middle, each line wrapped to the
    panel's width so it never runs into the panel beside it."""
    ax.axis("off")
    figure = ax.get_figure(root=True)  # a panel of a subfigure measures against the whole figure
    width_points = ax.get_position().width * figure.get_figwidth() * 72
    chars = max(16, int(width_points / (CHAR_WIDTH * fontsize)))
    lines = [textwrap.fill(line, chars, break_on_hyphens=False) for line in text.split("\n")]
    write = getattr(ax, "text2D", ax.text)  # a 3-D panel places 2-D text with text2D
    write(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=fontsize, color=color,
          transform=ax.transAxes)
