"""The built book in a real headless browser: every page of the toc renders, its figures load, its links work.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Without them the tests skip,
except under CI (``CI=true``), where they fail: CI must not pass without looking at the pages.
"""

import contextlib
import functools
import http.server
import os
import socket
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from mecl_utils.book.build import toc_files

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MISSING = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
IN_CI = os.environ.get("CI") == "true"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1024",
]
PAGES = toc_files(ROOT / "_toc.yml")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(MISSING) and not IN_CI,
        reason=f"no headless browser ({', '.join(MISSING)} missing): apt-get install chromium-driver",
    ),
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class BookServer(http.server.ThreadingHTTPServer):
    # Chromium opens several connections per page and drops the ones it no longer needs when it navigates on.
    request_queue_size = 64

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def start_browser(chromium: Path = CHROMIUM, chromedriver: Path = CHROMEDRIVER) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(str(chromedriver)))


@pytest.fixture(scope="module")
def site(built_book):
    """The base URL of the built HTML, served on a free port of 127.0.0.1."""
    server = BookServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(built_book)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if MISSING:
        pytest.fail(f"CI=true but {', '.join(MISSING)} missing: .ci/run must apt-get install chromium-driver")
    driver = start_browser()
    yield driver
    driver.quit()


def open_page(browser: webdriver.Chrome, url: str, tries: int = 3) -> webdriver.Chrome:
    """Load ``url``; a load that fails or ends elsewhere (a dropped connection) is tried again."""
    for _ in range(tries):
        try:
            browser.get(url)
        except WebDriverException as err:
            shown = (err.msg or repr(err)).splitlines()[0]
            continue
        # On a loaded machine the document can still be parsing when get() returns: give it time.
        with contextlib.suppress(TimeoutException):
            WebDriverWait(browser, 30).until(
                lambda b: b.execute_script("return document.readyState") == "complete"
            )
        shown = browser.execute_script("return [document.URL, document.readyState]")
        if shown == [url, "complete"]:
            return browser
    pytest.fail(f"{url} did not load in {tries} tries; last: {shown}")


@pytest.fixture(params=PAGES)
def page(request, browser, site):
    return open_page(browser, f"{site}/{request.param}.html")


def test_index_leads_to_the_first_page(browser, site):
    browser.get(f"{site}/index.html")
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url == f"{site}/{PAGES[0]}.html")


def test_page_has_a_title_and_a_heading(page):
    assert page.title.strip()
    assert page.find_element(By.CSS_SELECTOR, "article h1").text.strip()


def test_every_image_on_the_page_loads(page):
    images = page.execute_script(
        "return Array.from(document.images, i => [i.src, i.complete && i.naturalWidth])"
    )
    assert [src for src, width in images if not width] == []


def test_page_shows_no_error_output(page):
    assert page.find_elements(By.CSS_SELECTOR, ".output.stderr, .output.traceback, .traceback") == []


def test_every_internal_link_resolves(page, site):
    links = page.execute_script("return Array.from(document.links, a => a.href)")
    internal = sorted(
        {urldefrag(link).url for link in links if urlsplit(link).netloc == urlsplit(site).netloc}
    )
    broken = []
    for url in internal:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                status = response.status
        except OSError as err:
            status = err
        if status != 200:
            broken.append((url, status))
    assert internal, f"{page.current_url} has no link into the book (title {page.title!r})"
    assert broken == []


# Tables wider than the text column, measured from the column's right edge: a table inside a scrolling box is
# judged by the box (it scrolls inside the column), any other table by itself (it would be cut off).
TABLES_PAST_THE_COLUMN = """
const column = document.querySelector('article');
const edge = column.getBoundingClientRect().right + 1;
const scrolls = box => ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
return Array.from(column.querySelectorAll('table'), table => {
  let box = table.parentElement;
  while (box !== column && !scrolls(box)) box = box.parentElement;
  const shown = box === column ? table : box;
  return [table.innerText.slice(0, 60), Math.round(shown.getBoundingClientRect().right - edge)];
}).filter(([, past]) => past > 0);
"""


def test_every_table_fits_the_text_column_or_scrolls_inside_it(page):
    assert page.execute_script(TABLES_PAST_THE_COLUMN) == []
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_table_iv_fits_the_text_column_without_scrolling(browser, site):
    page = open_page(browser, f"{site}/notebooks/table_iv.html")
    shown = "article .cell:not(.tag_hide-output) .cell_output table"  # the full paper table may scroll
    widths = page.execute_script(
        f"return Array.from(document.querySelectorAll('{shown}'), "
        "t => [t.scrollWidth, t.parentElement.clientWidth])"
    )
    assert len(widths) >= 2 and all(table <= room for table, room in widths), f"[table, room] px: {widths}"


# Tables that show pandas' default 0, 1, 2 … as a first column (an unnamed index) or as their column names.
NUMBERED_TABLES = """
const numbered = texts => texts.length > 0 && texts.every((text, i) => text === String(i));
const text = cell => (cell ? cell.innerText.trim() : '');
return Array.from(document.querySelectorAll('article table'), table => {
  const head = table.tHead ? Array.from(table.tHead.rows) : [];
  const corner = head.map(row => text(row.cells[0])).join('');
  const rows = Array.from(table.tBodies).flatMap(body => Array.from(body.rows));
  const names = head.length ? Array.from(head[0].cells, text) : [];
  const shown = [
    corner === '' && numbered(rows.map(row => text(row.cells[0]))) ? 'index' : '',
    numbered(names[0] === '' ? names.slice(1) : names) ? 'columns' : '',
  ];
  return [table.innerText.slice(0, 60), shown.filter(Boolean)];
}).filter(([, shown]) => shown.length);
"""


def test_no_table_shows_a_meaningless_0_1_2_index(page):
    assert page.execute_script(NUMBERED_TABLES) == []


def test_the_distillation_table_fits_the_text_column_without_scrolling(browser, site):
    page = open_page(browser, f"{site}/notebooks/strategies.html")
    widths = page.execute_script(
        "return Array.from(document.querySelectorAll('article .cell_output table'), t => t)"
        ".filter(t => t.innerText.includes('distilled curriculum'))"
        ".map(t => [t.scrollWidth, t.parentElement.clientWidth])"
    )
    assert len(widths) == 1 and widths[0][0] <= widths[0][1], f"[table, room] px: {widths}"


def test_a_page_that_never_loads_fails_after_the_retries(browser):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/index.html"
    with pytest.raises(pytest.fail.Exception, match="did not load in 2 tries"):
        open_page(browser, url, tries=2)
