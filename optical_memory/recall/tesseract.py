"""The ``tesseract`` reader: the Tesseract OCR binary, where it is installed.

Tesseract is a system program, not a Python package: on Debian/Ubuntu ``apt-get install tesseract-ocr
tesseract-ocr-eng`` (add ``tesseract-ocr-chi-sim`` etc. for other scripts). Two settings matter on small
machines (measured on this project's CPU machines):

- ``OMP_THREAD_LIMIT=1``: Tesseract's OpenMP threads fight each other on two cores and run about 8 times
  slower;
- glyphs below about 10 px are read badly, so such pages are upscaled 2x (Lanczos) first. The glyph size is
  estimated from the page side, given the renderer's body text of 22 px on a 1280 px page.

Like every classical OCR it measures pixel loss, not DeepSeek-OCR's vision-token bottleneck.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time

from PIL import Image

from optical_memory.errors import RecallError
from optical_memory.ladder import Rung
from optical_memory.recall.base import Reading, resolve_rung

__all__ = ["TesseractReader", "glyph_px"]

BODY_PX_AT_1280 = 22
"""Body text size of a rendered page at 1280 px (``RenderStyle.body_size``)."""
MIN_GLYPH_PX = 10.0
"""Pages whose estimated body text is smaller than this are upscaled 2x before reading."""

_INSTALL = (
    "the tesseract reader needs the tesseract program, which is not on PATH: install it with "
    "'apt-get install tesseract-ocr tesseract-ocr-eng' (Debian/Ubuntu; add tesseract-ocr-chi-sim for "
    "Chinese), or use reader='rapidocr' (pip install 'optical-memory[ocr]')"
)


def glyph_px(side: int, *, page_px: int = 1280, body_px: int = BODY_PX_AT_1280) -> float:
    """Estimated body-text size in pixels on a page rendered at ``page_px`` and shown at ``side`` px."""
    return body_px * side / page_px


class TesseractReader:
    """Reads a page with the ``tesseract`` binary.

    Args:
        lang: Tesseract language codes, ``+``-joined (``eng``, ``eng+chi_sim``).
        psm: Page segmentation mode (6: a single uniform block of text, right for transcript pages).
        binary: Path or name of the program (default: ``tesseract`` found on PATH).
        timeout: Seconds before a page read is abandoned.

    Raises:
        RecallError: If the binary is not installed, naming the Debian packages to install.
    """

    name = "tesseract"

    def __init__(
        self, *, lang: str = "eng", psm: int = 6, binary: str | None = None, timeout: float = 120.0
    ) -> None:
        found = shutil.which(binary or "tesseract")
        if found is None:
            raise RecallError(_INSTALL)
        self.binary = found
        self.lang = lang
        self.psm = psm
        self.timeout = timeout

    def read(
        self,
        image: Image.Image,
        *,
        rung: Rung | str | None = None,
        page: int | None = None,
    ) -> Reading:
        """Read a page (upscaled 2x first when its glyphs are small).

        Raises:
            RecallError: If tesseract fails or times out.
        """
        r = resolve_rung(image, rung)
        start = time.perf_counter()
        gray = image.convert("L")
        if glyph_px(max(gray.size)) < MIN_GLYPH_PX:
            gray = gray.resize((gray.width * 2, gray.height * 2), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        gray.save(buf, format="PNG")
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        cmd = [self.binary, "stdin", "stdout", "-l", self.lang, "--psm", str(self.psm)]
        try:
            done = subprocess.run(
                cmd, input=buf.getvalue(), capture_output=True, env=env, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RecallError(f"tesseract took longer than {self.timeout:.0f} s on one page") from exc
        except OSError as exc:
            raise RecallError(f"cannot run {self.binary}: {exc}") from exc
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()
            hint = (
                f" (is the language pack for {self.lang!r} installed? e.g. apt-get install tesseract-ocr-eng)"
                if "language" in err.lower() or "traineddata" in err.lower()
                else ""
            )
            raise RecallError(f"tesseract failed with exit status {done.returncode}: {err[-500:]}{hint}")
        text = done.stdout.decode("utf-8", "replace").replace("\f", "").strip()
        return Reading(text, self.name, r, time.perf_counter() - start)
