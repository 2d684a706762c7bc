"""The report page in a real browser: headless Chromium (Debian's ``chromium``, installed by
``make test``/``make unit``) with no network renders report.html, and every plot is drawn: each
``<img>`` decoded at the size its PNG header states (read here from the base64 data, an oracle
independent of the browser)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import struct
import subprocess

import numpy as np
import orjson
import pandas as pd
from click.testing import CliRunner

from inferwatch.report_command import report
from tests.optional import missing

# per image: decoded?, natural size, and the pixels the browser drew that are not background
# (painted onto a canvas: a data: image does not taint it)
_PROBE = """<script>window.addEventListener("load", () => {
  const inked = (img) => {
    const c = document.createElement("canvas"); c.width = img.naturalWidth; c.height = img.naturalHeight;
    if (!c.width || !c.height) return 0;
    const g = c.getContext("2d"); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
    for (let k = 0; k < d.length; k += 4) if (d[k + 3] > 0 && d[k] + d[k + 1] + d[k + 2] < 600) n++;
    return n;
  };
  const p = document.createElement("pre"); p.id = "iw-images";
  p.textContent = JSON.stringify([...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight,
                                                              inked(i)]));
  document.body.appendChild(p);
});</script>"""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing("chromium is missing: `make test` installs it (apt-get install chromium)")
    return path


def _png_size(data_uri: str) -> tuple[int, int]:
    raw = base64.b64decode(data_uri.split(",", 1)[1])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    return struct.unpack(">II", raw[16:24])


def _inked(data_uri: str) -> int:
    """Pixels of the PNG that are not background, decoded here by matplotlib (the same rule
    as the probe's: opaque and darker than light grey)."""
    from matplotlib.image import imread

    px = np.round(imread(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])), format="png") * 255)
    rgb = px[..., :3].sum(axis=-1)
    alpha = px[..., 3] if px.shape[-1] == 4 else np.full(rgb.shape, 255.0)
    return int(((alpha > 0) & (rgb < 600)).sum())


def test_every_plot_of_the_report_is_drawn_in_headless_chromium(tmp_path):
    browser = _chromium()
    rng = np.random.default_rng(3)
    cols = lambda n, s: pd.DataFrame({  # noqa: E731
        "age": rng.normal(40 + s, 10, n), "score": rng.normal(s, 1, n),
        "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2] if not s else [0.2, 0.3, 0.5])})
    cols(2000, 0).to_parquet(tmp_path / "ref.parquet")
    pd.concat([cols(600, 0), cols(600, 2)], ignore_index=True).to_parquet(tmp_path / "cur.parquet")
    out = tmp_path / "out"
    r = CliRunner().invoke(report, ["--input", str(tmp_path / "cur.parquet"), "--reference",
                                    str(tmp_path / "ref.parquet"), "--window", "400", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    # p-values per feature, p-value per window, and one distribution per drifted feature at least
    assert len(sources) >= 3
    assert all(s.startswith("data:image/png;base64,") for s in sources)  # nothing to fetch
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", _PROBE + "</body>"))
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           probed.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="iw-images">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run: {done.stdout[-500:]} {done.stderr[-1000:]}"
    drawn = orjson.loads(found.group(1).replace("&quot;", '"'))
    assert len(drawn) == len(sources)
    for (complete, width, height, inked), src in zip(drawn, sources, strict=True):
        assert complete and (width, height) == _png_size(src) and width > 0 and height > 0
        expected = _inked(src)
        assert expected > 0.005 * width * height  # a plot, not a blank canvas
        assert abs(inked - expected) <= 0.02 * expected, (inked, expected)  # all of it drawn
