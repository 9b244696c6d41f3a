"""The demo app in a real headless browser: Debian Chromium driven by Selenium on localhost.

Starts `app/app.py` on a free port with a tiny saved model, clicks "Simulate", waits for the class
probabilities and checks that they are shown and sum to ~1, and that both images are drawn. Without
Chromium the test is skipped locally but FAILS under CI=true (`make install` installs it as root).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]
APP = Path(__file__).resolve().parents[2] / "app" / "app.py"


def require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if not missing:
        return
    message = f"missing {missing}: apt-get install -y chromium chromium-driver (make install does it as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_url(tiny_model_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "MPLBACKEND": "Agg"}
    log = open(tmp_path / "app.log", "w")
    server = subprocess.Popen(
        [sys.executable, str(APP), "--model", str(tiny_model_dir), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"the app exited with {server.returncode}:\n{(tmp_path / 'app.log').read_text()[-3000:]}"
                )
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"the app did not answer on {url}:\n{(tmp_path / 'app.log').read_text()[-3000:]}"
                    )
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def browser(tmp_path):
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_simulate_shows_probabilities_in_browser(browser, app_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(app_url)
    wait = WebDriverWait(browser, 60)
    wait.until(expected_conditions.element_to_be_clickable((By.ID, "simulate"))).click()
    meters = wait.until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#probs meter") or False
    )  # one <meter> per class, value = probability
    values = {meter.get_attribute("aria-label"): float(meter.get_attribute("value")) for meter in meters}
    assert set(values) == {"no_sub", "cdm", "axion"}
    assert sum(values.values()) == pytest.approx(1.0, abs=1e-3)
    images = wait.until(
        lambda driver: (
            [
                image
                for image in driver.find_elements(By.CSS_SELECTOR, "#input-image img, #cam-image img")
                if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
            ]
            if len(driver.find_elements(By.CSS_SELECTOR, "#input-image img, #cam-image img")) == 2
            else False
        )
    )
    assert len(images) == 2
    assert "theta_e" in browser.find_element(By.ID, "details").text
    screenshot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
