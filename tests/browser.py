"""Headless Chromium driven over the DevTools protocol, for the tests that look at pages.

Chromium speaks the protocol over two pipes (`--remote-debugging-pipe`: it reads commands
from fd 3 and writes replies and events to fd 4, each a JSON message ended by a NUL byte), so
the tests need no websocket library. `Browser.evaluate` runs JavaScript in the page and returns
its value; `Browser.screenshot` returns the page as an RGB array.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import numpy as np
import pytest
from PIL import Image


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def require_chromium() -> str:
    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's `chromium` where apt-get works)")
    return browser


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page (tab), sized `width` x `height` CSS pixels."""

    def __init__(self, width: int = 1280, height: int = 800, timeout: float = 120.0):
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():  # in the child: the protocol's fixed descriptors 3 (in) and 4 (out)
            # Copied first: a pipe end may already be fd 3 or 4, and dup2 onto itself would keep
            # its close-on-exec flag.
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self._process = subprocess.Popen(
            [require_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
             "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={self._profile.name}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes, close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session = None
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True,
                                 session=None)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from Chromium in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium closed its pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = "page", **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        session_id = self.session if session == "page" else session
        if session_id:
            message["sessionId"] = session_id
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def wait_for(self, expression: str, timeout: float = 60.0, interval: float = 0.25):
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"waited {timeout:g} s for: {expression}")
            time.sleep(interval)

    def frame_evaluate(self, expression: str, index: int = 0):
        """The value of a JavaScript expression in the page's `index`-th child frame (an iframe
        the page shows, e.g. a data URL), evaluated in a world of its own beside the frame's
        scripts; None when the page has no such frame."""
        children = self.send("Page.getFrameTree")["frameTree"].get("childFrames", [])
        if index >= len(children):
            return None
        context = self.send("Page.createIsolatedWorld", frameId=children[index]["frame"]["id"],
                            worldName="check")["executionContextId"]
        result = self.send("Runtime.evaluate", expression=expression, contextId=context, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> np.ndarray:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")).astype(int)

    def close(self) -> None:
        try:
            self.send("Browser.close", session=None)
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
