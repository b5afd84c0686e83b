"""The sandbox's /docs in a real browser: Swagger UI loads from the sandbox itself,
shows both request forms of generate-image and its error answers, and a call can be tried with
a token from the demo credentials through the OAuth2 Authorize dialog."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_app import ARTIFACTS
from playwright.sync_api import Browser, Page, expect

from mirrago.sandbox.server import EmbeddedSandbox, SandboxConfig, embedded

pytestmark = pytest.mark.browser


@pytest.fixture
def docs_page(browser: Browser) -> Iterator[tuple[Page, EmbeddedSandbox]]:
    with embedded(SandboxConfig(latency=0.05)) as sandbox:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(90_000)
        # Nothing but the sandbox: /docs must load no script or style from elsewhere.
        outside: list[str] = []
        context.on(
            "request",
            lambda request: (
                None if request.url.startswith(sandbox.base_url) else outside.append(request.url)
            ),
        )
        page = context.new_page()
        yield page, sandbox
        context.close()
        assert outside == []


def test_docs_show_both_forms_and_try_a_call_with_the_demo_credentials(
    docs_page: tuple[Page, EmbeddedSandbox],
) -> None:
    page, sandbox = docs_page
    page.goto(f"{sandbox.base_url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()

    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux")
    expect(dialog).to_contain_text("clientCredentials")
    dialog.locator(".auth-container button.authorize").first.click()
    expect(dialog.locator("button", has_text="Logout")).to_be_visible()
    expect(dialog).to_contain_text("Authorized")
    dialog.locator("button.btn-done").first.click()

    generate = page.locator(".opblock-post", has_text="/v1/mirrago/generate-image")
    generate.locator(".opblock-summary").click()
    body = generate.locator(".opblock-section-request-body")
    # Swagger UI fills the content-type choices after it draws the section: wait for them.
    expect(body.locator("select").first.locator("option")).to_have_count(2)
    options = body.locator("select").first.locator("option").all_inner_texts()
    assert options == ["application/json", "multipart/form-data"]
    responses = generate.locator(".responses-table").first
    for status in ("200", "400", "401", "402", "413", "429", "500"):
        expect(responses.locator(f"tr.response[data-code='{status}']")).to_have_count(1)

    generate.locator("button.execute").click()
    live = generate.locator(".live-responses-table tr.response .response-col_status")
    expect(live).to_have_text("200")
    expect(generate.locator(".curl-command")).to_contain_text("Authorization: Bearer")
    expect(generate.locator(".live-responses-table")).to_contain_text('"status": "pending"')
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sandbox-docs-try-generate.png"), full_page=True)
    assert sandbox.engine.stats()["jobs_created"] == 1
