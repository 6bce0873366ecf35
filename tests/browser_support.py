"""A real browser for the console tests: Debian's headless Chromium driven by Selenium.

Selenium's calls block, and the service under test runs on the test's own event loop, so every
browser call goes to a thread. One browser serves a whole test module.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# Set to a folder (docs/console) to keep a screenshot of every page the tests open.
SHOTS = os.environ.get("BANGDAI_CONSOLE_SHOTS", "")
DESKTOP, PHONE = (1280, 900), (390, 844)


@pytest.fixture(scope="module")
def driver():
    if not (CHROMIUM and CHROMEDRIVER):
        message = "the console's browser tests need Debian's chromium and chromium-driver (.ci/run installs them)"
        if os.environ.get("BANGDAI_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=zh-CN",
                "--disable-extensions", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


class Browser:
    """What a person does in the browser, awaitable from the test's loop."""

    def __init__(self, driver, client) -> None:
        self.driver, self.client = driver, client

    async def _run(self, fn, *args):
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self._run(self.driver.get, str(self.client.make_url(path)))
        await self._run(self._loaded)

    def _loaded(self) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")

    async def click(self, css: str, navigates: bool = True) -> None:
        """Click, and when the click loads a page (a link, a form's button) wait until it has."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

        def click() -> None:
            # Chromium can swap the document under a just-found node ("Node with given id does not
            # belong to the document", seen once in CI right after a page load): find it again.
            for attempt in range(3):
                try:
                    old = self.driver.find_element(By.TAG_NAME, "html")
                    self.driver.find_element(By.CSS_SELECTOR, css).click()
                    break
                except (StaleElementReferenceException, WebDriverException) as exc:
                    if attempt == 2 or not (isinstance(exc, StaleElementReferenceException)
                                            or "does not belong to the document" in str(exc)):
                        raise
                    self._loaded()
            if navigates:
                WebDriverWait(self.driver, 20).until(lambda _d: gone(old))
                WebDriverWait(self.driver, 20).until(
                    lambda d: d.execute_script("return document.readyState") == "complete")

        def gone(node) -> bool:
            """The page the node was on has been left: selenium's staleness_of, and also Chromium's
            "does not belong to the document" for a node of a document already swapped out (seen in CI
            with two test workers, where staleness_of raised it instead of answering True)."""
            try:
                node.is_enabled()
                return False
            except StaleElementReferenceException:
                return True
            except WebDriverException as exc:
                if "does not belong to the document" in str(exc):
                    return True
                raise

        await self._run(click)

    async def fill(self, css: str, text: str) -> None:
        from selenium.webdriver.common.by import By

        await self._run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).send_keys(text))

    async def choose(self, css: str, value: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        await self._run(lambda: Select(self.driver.find_element(By.CSS_SELECTOR, css)).select_by_value(value))

    async def text(self, css: str = "body") -> str:
        from selenium.webdriver.common.by import By

        return await self._run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).text)

    async def texts(self, css: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return await self._run(lambda: [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)])

    async def path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(await self._run(lambda: self.driver.current_url)).path

    async def resize(self, size: tuple[int, int]) -> None:
        await self._run(self.driver.set_window_size, *size)

    async def overflow(self) -> int:
        """How many pixels the page is wider than the window (0: nothing to scroll sideways but tables,
        which scroll inside their own box)."""
        return await self._run(lambda: self.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"))

    async def shot(self, name: str, size: tuple[int, int] = DESKTOP) -> None:
        """Keep a screenshot of the whole page (when BANGDAI_CONSOLE_SHOTS names a folder)."""
        if not SHOTS:
            return

        def take() -> None:
            self.driver.set_window_size(*size)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(size[0], max(size[1], min(int(height) + 140, 6000)))
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))
            self.driver.set_window_size(*DESKTOP)

        await self._run(take)
