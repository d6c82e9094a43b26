"""The report in a real browser (headless Chromium): it loads without console errors, every
image decodes (``naturalWidth > 0``), and the screenshot is not blank.

Skipped only where Chromium is absent, with a warning; ``.ci/run`` installs it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from disentkit.train import evaluate_run, fit
from disentkit.viz.report import write_report
from tests.train import registered_tiny, tiny_config

TIMEOUT = 60  # seconds, for every browser process
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--enable-logging=stderr", "--v=0"]
#: Injected into a copy of the report: records errors (script errors, failed resources,
#: console.error) and, once loaded, writes what it found into the DOM for ``--dump-dom``.
PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target || {};
    var url = String(t.src || t.href || "").slice(0, 40);
    errors.push(e.message ? "error: " + e.message
                          : "resource failed: " + (t.tagName || "") + " " + url);
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    errors.push("unhandled rejection: " + String(e.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (im) { return !im.complete || im.naturalWidth === 0; })
                       .map(function (im) { return im.alt || "(no alt)"; });
    var out = document.createElement("pre");
    out.id = "browser-probe";
    var widths = images.map(function (im) { return im.naturalWidth; });
    var layout = {};
    ["summary", "figures", "all-scores"].forEach(function (id) {
      var el = document.getElementById(id);
      layout[id] = el ? el.getBoundingClientRect().top + window.scrollY : null;
    });
    ["summary", "scores"].forEach(function (cls) {
      var el = document.querySelector("table." + cls);
      var box = el ? el.closest("details") || el : null;
      layout["table." + cls] = el ? el.getBoundingClientRect().height : null;
      layout["shown." + cls] = el ? (el.checkVisibility ? el.checkVisibility()
                                                         : el.offsetParent !== null) : null;
      layout["box." + cls] = box ? box.getBoundingClientRect().height : null;
    });
    out.textContent = JSON.stringify({n_images: images.length, broken: broken,
                                      errors: errors, widths: widths, layout: layout});
    document.body.appendChild(out);
  });
})();
</script>"""


def _chromium() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = _chromium()
    if exe is None:
        message = ("Chromium not installed: the browser test did NOT run (the report was not "
                   "checked in a real browser). Install Debian's `chromium` package (.ci/run "
                   "does) to run it.")
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    return exe


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of a tiny trained, evaluated run, with figures (rendered when the figure
    module is there, plus a PNG and an animated GIF written here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with registered_tiny():
            run = fit(tiny_config(steps=4, log_every=2, checkpoint_every=4),
                      run_dir=tmp_path_factory.mktemp("browser") / "run", progress=False)
            evaluate_run(run, n_samples=100, metrics=["mig", "dci"], mode="fast", seed=0)
            folder = run / "figures"
            folder.mkdir(exist_ok=True)
            rng = np.random.default_rng(0)
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
                folder / "zz_noise.png")
            frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (40, 200)]
            frames[0].save(folder / "zz_anim.gif", save_all=True, append_images=frames[1:],
                           duration=100, loop=0)
            return write_report(run, render_figures=True)
    finally:
        torch.set_num_threads(threads)


def _browse(exe: str, page: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    profile = workdir / f"profile-{len(list(workdir.glob('profile-*')))}"
    try:
        return subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish within {TIMEOUT} s on {page}")


def _console_messages(stderr: str) -> list[str]:
    """Console output of the page, as Chromium logs it (``...:CONSOLE:12] "msg", source``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _probe(exe: str, report: Path, workdir: Path, extra: str = "") -> dict:
    page = report.read_text(encoding="utf-8")
    probed = page.replace("<head>", "<head>\n" + PROBE, 1).replace("</body>", extra + "</body>")
    assert probed != page
    copy = workdir / f"probed-{len(list(workdir.glob('probed-*')))}.html"
    copy.write_text(probed, encoding="utf-8")
    done = _browse(exe, copy, workdir, "--virtual-time-budget=5000", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="browser-probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"the probe did not report; DOM tail: {done.stdout[-500:]!r}"
    return json.loads(html.unescape(match.group(1)))


def test_report_loads_in_chromium_and_the_screenshot_is_not_blank(chromium, report, tmp_path):
    shot = tmp_path / "shot.png"
    done = _browse(chromium, report, tmp_path, f"--screenshot={shot}",
                   "--window-size=1200,2000", "--hide-scrollbars")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_messages(done.stderr) == []
    image = Image.open(shot)
    image.load()
    assert image.format == "PNG" and image.size == (1200, 2000)
    gray = np.asarray(image.convert("L"), dtype=float)
    assert gray.std() > 10, f"blank screenshot (pixel std {gray.std():.2f})"
    assert (gray < 128).mean() > 0.005  # some dark pixels: text, tables, figures


def test_every_image_decodes_and_no_errors_in_chromium(chromium, report, tmp_path):
    n_img = report.read_text(encoding="utf-8").count("<img ")
    found = _probe(chromium, report, tmp_path)
    assert found["n_images"] == n_img >= 2, found
    assert found["broken"] == [], found
    assert found["errors"] == [], found
    assert all(w > 0 for w in found["widths"]), found


def test_the_probe_sees_broken_images_and_script_errors(chromium, report, tmp_path):
    """A control: the same check fails on a page with a broken image and a script error."""
    extra = ('<img src="data:image/png;base64,AAAA" alt="broken on purpose">'
             '<script>undefined_function_on_purpose();</script>')
    found = _probe(chromium, report, tmp_path, extra)
    assert found["broken"] == ["broken on purpose"], found
    assert any("undefined_function_on_purpose" in e for e in found["errors"]), found
    assert any("resource failed: IMG" in e for e in found["errors"]), found


def test_chromium_shows_the_summary_first_and_folds_the_full_table(chromium, report, tmp_path):
    """Laid out by the browser: the summary above the figures above the full table, the
    summary table shown, the full table folded (hidden until its <details> is opened)."""
    layout = _probe(chromium, report, tmp_path)["layout"]
    assert layout["summary"] < layout["figures"] < layout["all-scores"], layout
    assert layout["table.summary"] > 0 and layout["shown.summary"] is True, layout
    # folded: the table is not shown, its <details> is one line, shorter than the table
    assert layout["shown.scores"] is False, layout
    assert layout["box.scores"] < min(60, layout["table.scores"]), layout
