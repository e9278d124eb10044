"""A listener in a real browser: Chromium driven by selenium through `estm listen serve`'s page, with the keyboard
alone (Space plays, 1-4 answer, R and 1-9 play in a quality trial, End and the arrows set a rating, Enter goes on).

The tests use it (test_listen_browser.py), and so can a person trying the test by hand without ears to spare:

    python tests/listening_browser.py http://127.0.0.1:8000/ --listeners 3 --screenshots shots/

answers each trial as estm's own cue recogniser hears the audio the page plays (and rates quality by how far each
version's long-term spectrum lies from the reference's): answers given by this driver, not by people.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

WINDOW = (1000, 860)


def browser_missing() -> str | None:
    """What is missing for a browser test (selenium, chromium, chromedriver), or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium (pip install -e '.[dev]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "chromium (apt-get install chromium)"
    if not shutil.which("chromedriver"):
        return "chromedriver (apt-get install chromium-driver)"
    return None


def open_browser():
    """Headless Chromium (the system's, with the system's chromedriver: nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


class PageListener:
    """One listener at the page in `driver`; `base` is the server's address."""

    def __init__(self, driver, base: str, shots: Path | None = None):
        self.driver, self.base, self.shots = driver, base, shots

    def script(self, code: str):
        return self.driver.execute_script(f"return {code};")

    def press(self, *keys) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(*keys).perform()

    def wait(self, code: str, seconds: float = 20.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.script(code)
            if value:
                return value
            time.sleep(0.03)
        said = self.script("document.getElementById('status').textContent")
        raise AssertionError(f"the page never got to: {code} (it says: {said})")

    def screenshot(self, name: str) -> None:
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(self.shots / f"{name}.png"))

    def open(self, listener: str | None = None, *, shot: str | None = None) -> dict:
        """Load the page, give the id (None: keep what the page remembers), start; returns where it stands."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.driver.get(self.base)
        self.wait("state.setup !== null && document.querySelector('.quadrant') !== null")
        box = self.driver.find_element(By.ID, "listener")
        if listener is not None:
            box.clear()
            box.send_keys(listener)
        if shot:
            self.screenshot(shot)
        box.send_keys(Keys.ENTER)
        self.wait("state.listener !== null && $('welcome').hidden")
        return self.where()

    def where(self) -> dict:
        return self.script("{listener: state.listener, trial: state.trial, "
                           "progress: $('progress-text').textContent}")

    def answer_emotion(self, quadrant_key: str, sliders: tuple[int, int] | None = None,
                       shot: str | None = None) -> None:
        """Play, choose with key 1-4, optionally move the two sliders (Tab to each, arrow presses), Enter."""
        from selenium.webdriver.common.keys import Keys

        self.press(" ")
        self.wait("emotion.played")
        self.press(quadrant_key)
        if sliders:
            for scale, steps in zip(("valence", "arousal"), sliders):  # each arrow press moves a slider 0.05
                self.tab_to(scale)
                self.press(*([Keys.ARROW_RIGHT if steps > 0 else Keys.ARROW_LEFT] * abs(steps)))
        self.wait("!$('emotion-next').disabled")
        if shot:
            self.screenshot(shot)
        self.press(Keys.ENTER)

    def tab_to(self, element_id: str) -> None:
        """Tab through the page until `element_id` has the focus."""
        from selenium.webdriver.common.keys import Keys

        for _ in range(12):
            if self.script(f"document.activeElement.id === '{element_id}'"):
                return
            self.press(Keys.TAB)
        raise AssertionError(f"Tab never reached #{element_id}")

    def answer_quality(self, ratings: list[int], shot: str | None = None) -> None:
        """Play the reference (R), then each version (its number: it plays and takes the arrows), set its rating
        (End, then arrow-down presses), Enter."""
        from selenium.webdriver.common.keys import Keys

        self.press("r")
        self.wait("!players[0].paused")
        for number, rating in enumerate(ratings, 1):
            self.press(str(number))
            self.wait(f"!players[{number}].paused && document.activeElement === sliders()[{number - 1}]")
            self.press(Keys.END, *([Keys.ARROW_DOWN] * (100 - rating)))
        self.wait("!$('quality-next').disabled")
        if shot:
            self.screenshot(shot)
        self.press(Keys.ENTER)

    def moved_on(self, position: int, seconds: float = 20.0) -> dict:
        self.wait(f"!state.sending && (state.trial === null || state.trial.position !== {position})", seconds)
        return self.where()


def take_test(page: PageListener, answer: Callable[[dict], object], *, until: int | None = None,
              shots: dict[str, str] | None = None) -> dict:
    """Answer trials in order as `answer(trial)` says (a quadrant key and sliders, or ratings) up to position
    `until` (all when None); `shots` names the screenshot of the first trial of each kind. Returns where it stops."""
    shots = dict(shots or {})
    where = page.where()
    while where["trial"] is not None and (until is None or where["trial"]["position"] < until):
        trial = where["trial"]
        given = answer(trial)
        if trial["kind"] == "emotion":
            key, sliders = given
            page.answer_emotion(key, sliders, shot=shots.pop("emotion", None))
        else:
            page.answer_quality(given, shot=shots.pop("quality", None))
        where = page.moved_on(trial["position"])
    return where


# -------------------------------------------------------------------------------------- machine ears (by hand)


def cue_ears(base: str) -> Callable[[dict], object]:
    """Answers as estm hears the audio the page plays: the cue recogniser's quadrant, valence and arousal for an
    emotion trial; for a quality trial, 100 less 4 per dB of RMS difference between the version's and the
    reference's long-term third-octave spectra (100 Hz - 10 kHz)."""
    from estm_core.cues.emotion import recognise
    from estm_core.cues.meter import analyze

    def fetched(address: str) -> str:
        handle, path = tempfile.mkstemp(suffix=".flac")
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(base.rstrip("/") + address) as response:
            file.write(response.read())
        return path

    def answer(trial: dict):
        if trial["kind"] == "emotion":
            emotion = recognise(analyze(fetched(trial["audio"])))
            steps = (round(emotion.valence / 0.05), round(emotion.arousal / 0.05))
            return str("Q1 Q2 Q3 Q4".split().index(emotion.quadrant) + 1), steps
        reference = _bands(fetched(trial["reference"]))
        return [int(max(0, min(100, round(100 - 4 * _rms(_bands(fetched(url)) - reference)))))
                for url in trial["versions"]]

    return answer


def _bands(path: str):
    import numpy as np

    from estm_core import audio

    samples, rate = audio.load(path, mono=True)
    power = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
    centres = 1000 * 2.0 ** (np.arange(-10, 11) / 3)
    return np.array([10 * np.log10(power[(frequencies >= f / 2 ** (1 / 6)) & (frequencies < f * 2 ** (1 / 6))].sum()
                                   + 1e-12) for f in centres])


def _rms(values) -> float:
    import numpy as np

    return float(np.sqrt(np.mean(np.square(values))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="the server's address, as `estm listen serve` prints it")
    parser.add_argument("--listeners", type=int, default=1, help="how many listeners, one after another")
    parser.add_argument("--screenshots", type=Path, help="a folder for a screenshot of each trial kind")
    arguments = parser.parse_args()
    driver = open_browser()
    try:
        for number in range(arguments.listeners):
            driver.delete_all_cookies()
            driver.get(arguments.address)
            driver.execute_script("localStorage.clear()")
            page = PageListener(driver, arguments.address, arguments.screenshots if number == 0 else None)
            where = page.open("", shot="welcome")
            print(f"listener {where['listener']}: {where['progress']}", flush=True)
            where = take_test(page, cue_ears(arguments.address), shots={"emotion": "emotion", "quality": "quality"})
            page.screenshot("done")
            print(f"listener {where['listener']}: {where['progress']}", flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
