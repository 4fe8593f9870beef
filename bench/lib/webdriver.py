"""Headless Chromium over WebDriver (chromedriver's JSON protocol) for the browser benchmarks,
in a few lines of the standard library: no WebDriver package to install."""
import json
import time
import urllib.request


class Browser:
    """One session of the chromedriver at `driver` (`http://127.0.0.1:PORT`), with its own
    profile folder; `prefs` are Chromium preferences (the download folder, say)."""

    def __init__(self, driver, profile, prefs=None, timeout=1200):
        self.driver = driver
        self.timeout = timeout
        for _ in range(100):
            try:
                if self.call("GET", "/status")["ready"]:
                    break
            except Exception:
                pass
            time.sleep(0.1)
        options = {"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--user-data-dir=" + profile]}
        if prefs:
            options["prefs"] = prefs
        capabilities = {"alwaysMatch": {"goog:chromeOptions": options}}
        session = self.call("POST", "/session", {"capabilities": capabilities})["sessionId"]
        self.base = "/session/" + session

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.driver + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            return json.load(answer)["value"]

    def go(self, url):
        self.call("POST", self.base + "/url", {"url": url})

    def script(self, text):
        return self.call("POST", self.base + "/execute/sync", {"script": text, "args": []})

    def element(self, css):
        found = self.call("POST", self.base + "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def type_into(self, css, text):
        self.call("POST", self.base + "/element/" + self.element(css) + "/value", {"text": text})

    def click(self, css):
        self.call("POST", self.base + "/element/" + self.element(css) + "/click", {})

    def close(self):
        self.call("DELETE", self.base)
