"""Headless Chromium probes: how a browser lays out and draws a rendered page.

A probe script, added to a copy of the page, measures each ``svg.plot`` in the laid-out
page, then draws it onto a canvas and counts the coloured pixels there. Chromium is Debian's
package (``make browser`` installs it).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--force-device-scale-factor=1", "--hide-scrollbars"]  # fmt: skip

PROBE = """
<script>
window.addEventListener("load", async () => {
  const plots = [...document.querySelectorAll("svg.plot")];
  const results = await Promise.all(plots.map(async (svg) => {
    const box = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll(".mark")].map((m) => m.getBBox());
    const copy = svg.cloneNode(true);
    copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
    const image = new Image();
    image.src = "data:image/svg+xml;charset=utf-8," +
      encodeURIComponent(new XMLSerializer().serializeToString(copy));
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.width; canvas.height = image.height;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let coloured = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
      if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 30) coloured++;
    }
    return {title: svg.querySelector("title").textContent, width: box.width,
            height: box.height, top: box.top + window.scrollY,
            marks: marks.filter((b) => b.width > 0 && b.height > 0).length,
            coloured: coloured};
  }));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({plots: results,
                                    height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>
"""


def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    return CHROMIUM


def run_chromium(profile: Path, *args: str) -> str:
    shutil.rmtree(profile, ignore_errors=True)
    result = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def probe_page(html: str, folder: Path) -> dict[str, Any]:
    """Each plot's laid-out size, drawn marks and coloured pixels, as Chromium rendered it."""
    page = folder / "probed.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = run_chromium(folder / "profile", "--window-size=1280,1000",
                       "--virtual-time-budget=15000", "--dump-dom", page.as_uri())  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run; DOM ends with: {dom[-500:]}"
    return orjson.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(html_path: Path, folder: Path, height: int) -> tuple[int, int]:
    """Screenshot the whole page; the PNG's width and height from its header."""
    shot = folder / "report.png"
    run_chromium(folder / "profile", f"--window-size=1280,{height}",
                 f"--screenshot={shot}", html_path.as_uri())  # fmt: skip
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, tall = struct.unpack(">II", header[16:24])
    return width, tall


def assert_plots_drawn(probe: dict[str, Any], expected_titles: Counter[str]) -> None:
    """Every plot laid out, with sized marks and more coloured pixels than its legend alone."""
    plots = probe["plots"]
    assert Counter(p["title"] for p in plots) == expected_titles
    for plot in plots:
        assert plot["width"] > 200 and plot["height"] > 80, plot
        assert plot["marks"] > 0, f"no bar or span with a size in {plot['title']!r}"
        assert plot["coloured"] > 1000, f"{plot['title']!r} drew only {plot['coloured']} px"
