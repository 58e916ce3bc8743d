import base64
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from gallery.models import Photo

PHOTOS = Path(__file__).parent / "photos"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

DROP_FILE = """async ([data, name]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
    const zone = document.getElementById("dropzone");
    const options = { dataTransfer: transfer, bubbles: true, cancelable: true };
    for (const type of ["dragenter", "dragover", "drop"]) {
        zone.dispatchEvent(new DragEvent(type, options));
    }
}"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Install Chromium: ./scripts/install-system-packages --tests"
    # Playwright's sync API runs an event loop; the live server's database
    # calls happen in their own thread, so Django's guard is not needed here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


@pytest.mark.browser
@pytest.mark.worker
def test_sign_up_drop_a_photo_and_watch_labels_arrive(
    live_server, embedded_worker, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page()
    page.goto(f"{live_server.url}/accounts/sign-up/")
    page.fill("#id_username", "grace")
    page.fill("#id_email", "grace@example.com")
    page.fill("#id_password1", "cobol-compiler-1959")
    page.fill("#id_password2", "cobol-compiler-1959")
    page.click("main button[type=submit]")
    page.click("text=Upload photos")
    photo = base64.b64encode((PHOTOS / "chelsea.jpg").read_bytes()).decode()

    page.evaluate(DROP_FILE, [photo, "chelsea.jpg"])

    queued = page.locator("#upload-queue li", has_text="chelsea.jpg")
    expect(queued.locator(".state")).to_contain_text("stored", timeout=20_000)
    cat = queued.locator(".chip", has_text=re.compile(r"^Cat \d+%$"))
    expect(cat).to_be_visible(timeout=30_000)
    page.screenshot(path=tmp_path / "labels-arrived.png")
    assert Photo.objects.get().owner.username == "grace"
