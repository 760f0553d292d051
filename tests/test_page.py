"""The leaderboard page as a reader sees it: rendered by a real headless Chromium, which must show
the sections, each problem's d in numeric order and every image loaded. Skipped, saying why, where
no Chromium is installed (Debian: `apt-get install -y chromium`)."""

import json
import re
import shutil
import subprocess

import pytest

from harness import report
from test_report import HEADER, synthetic_store

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome", "chrome")
                if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get "
                                "install -y chromium); the page is not rendered")

#: run once the page and its images have loaded: what a reader sees, as JSON in <pre id=probe>
PROBE = """<script>
window.addEventListener('load', () => {
  const seen = {
    sections: [...document.querySelectorAll('section.problem > h2')].map(h => h.textContent),
    d: [...document.querySelectorAll('section.instance')].map(s => Number(s.dataset.d)),
    images: [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]),
    summary: document.querySelectorAll('#summary tbody tr').length,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  };
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(*args: str) -> str:
    proc = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1366,900", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow  # ~25 s on 2 shared cores: drawing the report's figures (~15 s) and Chromium
def test_the_page_shows_its_sections_in_order_with_every_image_loaded(tmp_path):
    out = tmp_path / "report"
    report.write(synthetic_store(tmp_path / "runs.parquet"), out, header=HEADER)
    page = (out / "index.html").read_text()
    probe = out / "probe.html"  # beside index.html, so the images resolve the same way
    probe.write_text(page.replace("</body>", PROBE + "\n</body>"))
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    seen = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1)
                      .replace("&quot;", '"').replace("&amp;", "&"))
    assert seen["sections"] == ["bosons"]
    assert seen["d"] == [2, 3, 10]  # as numbers, not as text (10 < 2)
    assert seen["summary"] == 3
    assert len(seen["images"]) >= 4 and all(width > 0 for _, width in seen["images"]), seen["images"]
    assert any(src.startswith("plots/scaling_") for src, _ in seen["images"])
    assert seen["overflow"] <= 0  # nothing wider than a laptop's 1366-pixel window

    shot = tmp_path / "page.png"
    _chromium(f"--screenshot={shot}", (out / "index.html").as_uri())
    from PIL import Image
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # drawn, not a blank page
