"""A download progress bar: a widget in a notebook, text in a terminal (tqdm.auto)."""

from __future__ import annotations

from tqdm.auto import tqdm


class DownloadBar:
    """Shows bytes downloaded; created on the first report, so nothing shows when all is cached."""

    def __init__(self, description: str):
        self.description = description
        self._bar: tqdm | None = None

    def update(self, done: int, total: int) -> None:
        """Move the bar to done of total bytes."""
        if self._bar is None:
            self._bar = tqdm(
                total=total, desc=self.description, unit="B", unit_scale=True, unit_divisor=1024
            )
        self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
