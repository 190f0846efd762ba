"""The web console in a real headless Chromium (Debian's package, driven by Playwright)
against a real local stack, and the console API's guards over real HTTP."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    FilePayload,
    Page,
    Route,
    expect,
    sync_playwright,
)

from conveyor.core.media import EXTENSIONS
from conveyor.functions.consumer import FAILURE_REASON
from conveyor.local.console import MODULES
from conveyor.local.runtime import LocalRuntime, RuntimeOptions, Started
from conveyor.ops.diagram import graph
from conveyor.topology import TOPOLOGY, Profile
from tests import samples
from tests.integration.conftest import canary_runtime, eventually, first_run, local_runtime

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.xdist_group("console")]
# Playwright's 5 s default is a guess about one machine's speed; a loaded 2-core machine
# can take longer to start workers or render, so every wait is generous by default.
expect.set_options(timeout=30_000)

ARTIFACTS = Path(os.environ.get("CONVEYOR_TEST_ARTIFACTS", "test-artifacts"))
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module", params=list(Profile), ids=str)
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Started]:
    """The console over a stack behind each profile's edge: its forms call the API."""
    directory = tmp_path_factory.mktemp(f"console-{request.param}")
    with local_runtime(directory, profile=Profile(request.param)) as started:
        yield started


def console_url(stack: Started) -> str:
    return f"{stack.info.gateway_url}/console"


class Errors:
    """Every console error and uncaught exception the page produced."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.seen.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.seen.append(f"console: {message.text}")


@pytest.fixture
def page(browser: Browser, stack: Started) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    errors = Errors(opened)
    opened.goto(console_url(stack))
    expect(opened.locator("#phase")).to_have_text("running", timeout=60_000)
    yield opened
    context.close()
    assert errors.seen == [], "the console logged errors"


def stats(page: Page, node: str) -> str:
    return page.locator(f"#node-{node} .stats").inner_text()


def invocations(page: Page, function: str) -> int:
    text = stats(page, f"fn_{function}")
    return int(text.split(" inv")[0]) if " inv" in text else 0


def metric(page: Page, name: str) -> int:
    card = page.locator(f'.metric[data-metric="{name}"] .value')
    return int(card.inner_text()) if card.count() else 0


def test_the_console_draws_both_pipelines_and_saves_screenshots(page: Page) -> None:
    drawing = graph(TOPOLOGY)
    expect(page.locator(".pipeline")).to_have_count(2)
    expect(page.locator(".node")).to_have_count(len(drawing.nodes))
    expect(page.locator(".pipeline svg.edges path")).to_have_count(len(drawing.edges))
    expect(page.locator("#node-queue_billing .stats")).to_contain_text("visible")
    expect(page.locator("#node-queue_billing_dlq .stats")).to_contain_text("dead letter")
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator('input[name="file"]')).to_have_attribute("accept", ",".join(EXTENSIONS))

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-1280x800.png"), full_page=True)
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 1280, "nothing sticks out sideways at 1280x800"

    page.set_viewport_size({"width": 390, "height": 844})
    # Wait for the relayout and edge redraw rather than for a fixed time.
    page.wait_for_function("document.documentElement.scrollWidth <= 390")
    page.screenshot(path=str(ARTIFACTS / "console-narrow.png"), full_page=True)
    assert (ARTIFACTS / "console-1280x800.png").stat().st_size > 10_000


def test_an_order_sent_from_the_form_appears_and_moves_the_counters(page: Page) -> None:
    before_invocations = invocations(page, "publisher")
    before_billed = metric(page, "OrdersBilled")
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    page.fill('#order-form input[name="customer_id"]', customer)
    page.fill('#order-form input[name="quantity"]', "3")
    page.fill('#order-form input[name="unit_price"]', "4.10")
    page.click("#order-form button")
    expect(page.locator("#order-result")).to_contain_text("accepted order")
    order_id = page.locator("#order-result").get_attribute("data-order-id")
    assert order_id

    row = page.locator(f'#orders tr[data-order-id="{order_id}"]')
    expect(row).to_contain_text(customer, timeout=60_000)
    expect(row).to_contain_text("12.30 EUR")
    expect(row).to_contain_text("billed")
    expect(row).to_contain_text(f"{order_id}.json")
    page.wait_for_function(
        "([id, n]) => Number(document.querySelector(id).textContent.split(' inv')[0]) > n",
        arg=["#node-fn_publisher .stats", before_invocations],
    )
    expect(page.locator('.metric[data-metric="OrdersBilled"] .value')).not_to_have_text(
        str(before_billed), timeout=60_000
    )
    assert metric(page, "OrdersAccepted") >= 1

    # Its trace, drawn: the publisher, then each queue's wait and record, in parent order.
    row.locator(".trace-link").click()
    waterfall = page.locator("#trace .waterfall")
    for queue in ("billing", "archive"):
        record = waterfall.locator(f'.row[data-outcome="processed"]:has-text("{queue} process")')
        expect(record).to_have_count(1, timeout=60_000)
        expect(record.locator(".track .wait")).to_have_count(1)
        expect(record.locator(".track .span.processed")).to_have_count(1)
        expect(record).to_contain_text("waited")
    hops = waterfall.locator(".row:not(.header)")
    first = hops.first
    expect(first).to_have_attribute("data-depth", "0")
    expect(first.locator(".service")).to_have_text("publisher")
    depths = [int(d) for d in hops.evaluate_all("rows => rows.map(r => r.dataset.depth)")]
    assert depths[0] == 0
    assert all(b <= a + 1 for a, b in itertools.pairwise(depths)), depths
    widths = waterfall.locator(".track .span").evaluate_all(
        "bars => bars.map(b => b.getBoundingClientRect().width)"
    )
    assert all(width >= 2 for width in widths), "every hop is drawn"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#trace").screenshot(path=str(ARTIFACTS / "console-trace.png"))


def test_an_order_the_publisher_refuses_shows_its_reason(page: Page) -> None:
    page.fill('#order-form input[name="unit_price"]', "-1")
    page.click("#order-form button")
    result = page.locator("#order-result")
    expect(result).to_contain_text("refused (400)")
    expect(result).to_contain_text("unit_price")
    expect(page.locator('.metric[data-metric="OrdersRejected"]')).to_contain_text(
        "invalid_order", timeout=60_000
    )


def test_an_uploaded_image_shows_its_thumbnail_and_links_to_every_variant(page: Page) -> None:
    served: dict[str, str] = {}
    page.on(
        "response",
        lambda response: served.__setitem__(response.url, response.headers.get("content-type", "")),
    )
    page.set_input_files("#upload-form input[type=file]", str(samples.PHOTOS["coffee.png"]))
    page.click("#upload-form button")
    expect(page.locator("#upload-result")).to_contain_text("uploaded as")
    expect(page.locator("#upload-result")).to_contain_text("request id ")
    upload_id = page.locator("#upload-result").get_attribute("data-upload-id")
    assert upload_id

    card = page.locator(f'.card[data-image-id="{upload_id}"]')
    expect(card).to_have_attribute("data-status", "processed", timeout=60_000)
    line = page.locator("#upload-result")
    expect(line).to_have_attribute("data-status", "processed")
    expect(line).to_contain_text(f"coffee.png processed as {upload_id}: large, medium, thumb")
    thumbnail = card.locator("img")
    expect(thumbnail).to_have_count(1)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
    )
    size = thumbnail.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert max(size) == 150, size
    # The browser names AVIF and WebP in its Accept: the media origin serves the best.
    source = thumbnail.get_attribute("src")
    assert source
    assert source.endswith("?formats=avif,webp")
    assert served[source] == "image/avif"
    expect(card.locator(".formats")).to_contain_text("png")
    expect(card.locator(".formats")).to_contain_text("avif")
    expect(card.locator(".formats")).to_contain_text("webp")
    links = card.locator(".links a")
    expect(links).to_have_count(3)
    for href in links.evaluate_all("links => links.map(a => a.href)"):
        assert requests.get(href, timeout=10).headers["Content-Type"] == "image/png"

    card.locator(".trace-link").click()
    expect(page.locator('#trace-form input[name="reference"]')).to_have_value(upload_id)
    record = page.locator('#trace .waterfall .row:has-text("images process")')
    expect(record).to_have_attribute("data-outcome", "processed")
    expect(record.locator(".track .wait")).to_have_count(1)
    expect(page.locator("#trace .waterfall .row").nth(1).locator(".service")).to_have_text(
        "presign"
    )


def test_the_trace_form_says_why_an_id_has_no_trace(browser: Browser, stack: Started) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors = Errors(page)
    try:
        page.goto(console_url(stack))
        expect(page.locator("#phase")).to_have_text("running", timeout=60_000)
        page.fill('#trace-form input[name="reference"]', "no-such-order")
        page.click("#trace-form button")
        expect(page.locator("#trace .result.bad")).to_contain_text("no trace of 'no-such-order'")
    finally:
        context.close()
    # The browser reports the 404 itself; the page adds nothing of its own.
    assert [e for e in errors.seen if "404" not in e] == []


def test_the_console_loads_as_es_modules_each_saying_what_it_draws(
    browser: Browser, stack: Started
) -> None:
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(console_url(stack))
        expect(page.locator("#phase")).to_have_text("running", timeout=60_000)
    finally:
        context.close()
    loaded = {url.rsplit("/", 1)[1] for url in requested if url.endswith(".js")}
    assert loaded == {f"{module}.js" for module in MODULES}
    shipped = resources.files("conveyor.local").joinpath("console_assets").iterdir()
    assert {p.name for p in shipped if p.name.endswith(".js")} == loaded, "none left out"
    for module in MODULES:
        answer = requests.get(f"{console_url(stack)}/{module}.js", timeout=10)
        assert answer.headers["Content-Type"].startswith("text/javascript")
        assert answer.text.startswith("// "), f"{module}.js opens with what it draws"


def test_an_upload_the_pipeline_rejects_reads_failed_with_its_reason(page: Page) -> None:
    impostor: FilePayload = {
        "name": "impostor.png",
        "mimeType": "image/png",
        "buffer": b"GIF89a, not a PNG",
    }
    page.set_input_files("#upload-form input[type=file]", files=[impostor])
    page.click("#upload-form button")
    line = page.locator("#upload-result")
    expect(line).to_contain_text("impostor.png uploaded as")
    expect(line).to_have_attribute("data-status", "failed", timeout=60_000)
    expect(line).to_contain_text("impostor.png failed: not_an_image")
    expect(line).not_to_contain_text("uploaded as")


def test_a_dead_letter_shows_its_reason_and_the_redrive_button_empties_the_dlq(
    page: Page, stack: Started
) -> None:
    order_id = f"dlq-{uuid.uuid4().hex[:8]}"
    order = {
        "order_id": order_id,
        "customer_id": "cust-dlq",
        "currency": "EUR",
        "client_id": "dev",
        "items": [{"sku": "A", "quantity": 1, "unit_price": "2.50"}],
        "accepted_at": "2026-11-24T10:00:00+00:00",
        "correlation_id": "console-dlq",
    }
    sent = stack.clients("sqs").send_message(
        QueueUrl=stack.info.resources.queues["billing-dlq"],
        MessageBody=json.dumps(order),
        MessageAttributes={
            FAILURE_REASON: {"DataType": "String", "StringValue": "forced here by the test"}
        },
    )
    dlq = page.locator('.dlq[data-dlq="billing-dlq"]')
    expect(dlq.locator("header")).to_contain_text("1 message", timeout=60_000)
    expect(page.locator("#node-queue_billing_dlq")).to_have_class("node kind-queue alert")
    # The page keeps refreshing; none of its refreshes receives the message.
    for _ in range(3):
        with page.expect_response(lambda r: r.url.endswith("/console/api/dead-letters")):
            pass
    [looked] = stack.clients("sqs").receive_message(
        QueueUrl=stack.info.resources.queues["billing-dlq"],
        AttributeNames=["ApproximateReceiveCount"],
        MaxNumberOfMessages=1,
    )["Messages"]
    assert looked["MessageId"] == sent["MessageId"]
    assert looked["Attributes"]["ApproximateReceiveCount"] == "1", "only this test received it"
    stack.clients("sqs").change_message_visibility(
        QueueUrl=stack.info.resources.queues["billing-dlq"],
        ReceiptHandle=looked["ReceiptHandle"],
        VisibilityTimeout=0,
    )

    letter = page.locator(f'tr[data-message-id="{sent["MessageId"]}"]')
    expect(letter).to_have_count(0)
    page.click('button.list[data-queue="billing"]')
    expect(letter).to_contain_text("forced here by the test")
    expect(letter).to_contain_text(f"order {order_id}")
    # The count from before the listing: the one receive this test made.
    expect(letter.locator("td.num")).to_have_text("1")
    expect(dlq.locator(".note")).to_contain_text("raises its receive count by one")

    page.click('button.redrive[data-queue="billing"]')
    expect(page.locator("#redrive-billing")).to_contain_text("moved 1 back to billing")
    expect(page.locator('.dlq[data-dlq="billing-dlq"] header')).to_contain_text(
        "0 messages", timeout=60_000
    )
    expect(letter).to_have_count(0)
    expect(page.locator(f'#orders tr[data-order-id="{order_id}"]')).to_contain_text(
        "billed", timeout=60_000
    )


def api(stack: Started, path: str, **options: Any) -> requests.Response:
    method = options.pop("method", "GET")
    url = f"{stack.info.gateway_url}/console/api/{path}"
    return requests.request(method, url, timeout=15, **options)


def test_the_console_api_answers_only_its_own_page(stack: Started) -> None:
    order = {"customer_id": "c", "currency": "EUR", "items": []}
    rebound = api(stack, "orders", headers={"Host": "attacker.example:80"})
    assert (rebound.status_code, rebound.json()["error"]) == (421, "wrong_host")
    forged = api(
        stack, "orders", method="POST", json=order, headers={"Origin": "http://attacker.example"}
    )
    assert (forged.status_code, forged.json()["error"]) == (403, "cross_origin")
    cross_site = api(
        stack, "redrive", method="POST", json={"queue": "billing"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )  # fmt: skip
    assert cross_site.status_code == 403
    form = api(stack, "orders", method="POST", data="customer_id=c")
    assert (form.status_code, form.json()["error"]) == (415, "unsupported_media_type")
    unknown = api(stack, "redrive", method="POST", json={"queue": "nope"})
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unknown_queue")
    wrong_method = api(stack, "redrive")
    assert (wrong_method.status_code, wrong_method.headers["Allow"]) == (405, "POST")
    missing = api(stack, "secrets")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    not_an_image = api(
        stack, "uploads", method="POST", data=b"<svg/>", headers={"Content-Type": "image/svg+xml"}
    )
    assert not_an_image.status_code == 415
    page = requests.get(console_url(stack), timeout=10)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_status_reports_the_metric_totals_the_runtime_read(stack: Started) -> None:
    from conveyor.local.status import runtime_overview

    api(stack, "orders", method="POST", json={"customer_id": "c", "currency": "EUR", "items": []})

    def rejected() -> list[dict[str, Any]]:
        overview = runtime_overview(stack.info.gateway_url)
        return [
            s
            for s in overview["metrics"]
            if s["name"] == "OrdersRejected" and s["dimensions"].get("reason") == "invalid_order"
        ]

    [series] = eventually(rejected, timeout_s=60)
    assert series["dimensions"]["service"] == "publisher"


def test_the_console_says_when_the_stack_is_starting_and_when_it_is_down(
    browser: Browser, tmp_path: Path
) -> None:
    runtime = LocalRuntime(RuntimeOptions(state_dir=tmp_path, port=0, endpoint_url=None))
    starter = threading.Thread(target=runtime.start, daemon=True)
    starter.start()
    try:
        gateway = eventually(lambda: runtime.gateway, timeout_s=60, interval_s=0.01)
        first = requests.get(f"{gateway.url}/console/api/overview", timeout=5).json()
        assert first["phase"] == "starting", first
        refused = requests.post(f"{gateway.url}/orders", data=b"{}", timeout=5)
        assert (refused.status_code, refused.json()["error"]) == (503, "starting")

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{gateway.url}/console")
        expect(page.locator("#phase")).to_have_text("running", timeout=60_000)
        starter.join(timeout=60)
        runtime.stop()
        banner = page.locator("#banner")
        expect(banner).to_contain_text("cannot reach the local stack", timeout=60_000)
        expect(banner).to_contain_text("conveyor up")
        expect(page.locator("#phase")).to_have_text("down")
        expect(page.locator("#order-form button")).to_be_disabled()
        expect(page.locator("#order-result")).to_have_text(
            "Sending resumes when the local stack is running."
        )
        context.close()
    finally:
        starter.join(timeout=60)
        runtime.stop()  # idempotent: a no-op when the test got this far


def test_a_page_planted_under_processed_neither_renders_nor_reaches_the_console(
    browser: Browser, stack: Started
) -> None:
    console_api = f"{stack.info.gateway_url}/console/api/orders"
    script = (
        "<script>document.title = 'ran';"
        f"fetch('{console_api}', {{method: 'POST', headers: {{'Content-Type': "
        "'application/json'}, body: '{}'}).then(() => document.title = 'reached')</script>"
    )
    bucket = stack.info.resources.buckets["media"]
    for key in ("processed/large/planted.html", "processed/large/planted.jpg"):
        stack.clients("s3").put_object(
            Bucket=bucket, Key=key, Body=f"<html>{script}</html>".encode(), ContentType="text/html"
        )
    media = f"{stack.info.media_url}/media/processed/large"
    context = browser.new_context()
    page = context.new_page()
    try:
        refused = page.goto(f"{media}/planted.html")
        assert refused is not None
        assert refused.status == 404
        shown = page.goto(f"{media}/planted.jpg")
        assert shown is not None
        assert shown.headers["content-type"] == "image/jpeg"
        # Chromium shows the response as a (broken) image: there is no HTML document
        # in which the planted script could run.
        assert page.evaluate("document.contentType") == "image/jpeg"
        assert page.locator("script").count() == 0
        assert page.title() not in ("ran", "reached")
        # Even code running on the media origin cannot act through the console.
        status = page.evaluate(
            "url => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: '{}'}).then(r => r.status, () => 'blocked')",
            console_api,
        )
        assert status in ("blocked", 403), status
    finally:
        context.close()


def test_the_console_shows_loading_until_its_first_data_arrives(
    browser: Browser, stack: Started
) -> None:
    released = threading.Event()

    def held(route: Route) -> None:
        # Until released, the read fails as a network error would: nothing is drawn.
        if released.is_set():
            route.fulfill(json=[])
        else:
            route.abort()

    context = browser.new_context()
    page = context.new_page()
    try:
        page.route("**/console/api/orders", held)
        page.route("**/console/api/images", held)
        page.goto(console_url(stack))
        expect(page.locator("#phase")).to_have_text("running", timeout=60_000)
        with page.expect_request("**/console/api/orders"):
            pass  # a refresh tried, and failed, after the stack was running
        expect(page.locator("#orders tbody")).to_have_text("Loading…")
        expect(page.locator("#images")).to_have_text("Loading…")
        released.set()
        expect(page.locator("#orders tbody")).to_have_text("No orders billed yet.")
        expect(page.locator("#images")).to_have_text("No images yet.")
    finally:
        context.close()


def test_a_foreign_address_is_refused_with_the_address_to_open(
    browser: Browser, stack: Started
) -> None:
    port = stack.info.gateway_url.rsplit(":", 1)[1]
    # A name that resolves to the stack's address, as a LAN name or a rebound one would.
    rules = "--host-resolver-rules=MAP conveyor.test 127.0.0.1"
    launched = browser.browser_type.launch(
        executable_path=chromium(), args=[*CHROMIUM_FLAGS, rules]
    )
    try:
        page = launched.new_page()
        answer = page.goto(f"http://conveyor.test:{port}/console")
        assert answer is not None
        assert answer.status == 421
        body = answer.json()
        assert body["error"] == "wrong_host"
        assert f"open {stack.info.gateway_url}/console" in body["reason"]
    finally:
        launched.close()


def test_the_canary_panel_shows_each_check_of_its_last_run(
    browser: Browser, tmp_path: Path
) -> None:
    from conveyor.verify import checks

    runtime = canary_runtime(tmp_path, Profile.LEAN)
    with runtime as started:
        run = first_run(runtime)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors = Errors(page)
        page.goto(console_url(started))
        expect(page.locator(f'[data-canary-run="{run["run"]["id"]}"] .status')).to_have_text(
            "pass", timeout=60_000
        )
        rows = page.locator("#canary-checks tbody tr")
        expect(rows).to_have_count(len([c for c in checks.CHECKS if not c.operator]))
        expect(page.locator('[data-check="order-billed"] .status')).to_have_text("pass")
        expect(page.locator('[data-check="https-only"] .status')).to_have_text("skip")
        page.locator("#canary").screenshot(path=str(ARTIFACTS / "console-canary.png"))
        context.close()
    assert errors.seen == [], "the console logged errors"
