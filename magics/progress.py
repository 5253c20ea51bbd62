"""A progress bar: a widget in a notebook, text in a terminal (tqdm.auto)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm.auto import tqdm


class DownloadBar:
    """Shows bytes downloaded (or other units done); created on the first report, so nothing
    shows when all is cached."""

    def __init__(self, description: str, unit: str = "B"):
        self.description = description
        self.unit = unit
        self._bar: tqdm | None = None

    def update(self, done: int, total: int) -> None:
        """Move the bar to done of total bytes."""
        if self._bar is None:
            from tqdm.auto import tqdm  # imported when there is progress to show

            in_bytes = self.unit == "B"
            self._bar = tqdm(
                total=total,
                desc=self.description,
                unit=self.unit,
                unit_scale=in_bytes,
                unit_divisor=1024 if in_bytes else 1000,
            )
        self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
