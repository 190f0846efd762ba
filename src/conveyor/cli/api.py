"""Commands that call the local stack's API as a client would: ``order``, ``upload``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from conveyor.cli import render
from conveyor.cli.app import StateDir, app, dev_credentials, fail, running
from conveyor.cli.render import console
from conveyor.local.state import DEFAULT_STATE_DIR
from conveyor.ops.orders import await_billed
from conveyor.ops.uploads import upload_and_wait


def _parse_item(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        raise typer.BadParameter(f"{text!r}: expected SKU:QUANTITY:UNIT_PRICE, e.g. KB-1:2:19.90")
    return {"sku": parts[0], "quantity": int(parts[1]), "unit_price": parts[2]}


@app.command()
def order(
    directory: StateDir = DEFAULT_STATE_DIR,
    customer: Annotated[str | None, typer.Option(help="Customer id.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "EUR",
    item: Annotated[
        list[str] | None, typer.Option(help="SKU:QUANTITY:UNIT_PRICE; repeat for more lines.")
    ] = None,
    order_id: Annotated[
        str | None, typer.Option(help="Idempotency key; generated if absent.")
    ] = None,
    request_id: Annotated[
        str | None, typer.Option(help="Sent as X-Request-Id: the correlation id in every log.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="A JSON file with the whole order instead of flags.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to follow the order to billed (GET /orders/{id}); 0: don't."),
    ] = 30.0,
) -> None:
    """Send one signed order to the local stack, print the answer, and follow the order
    until it is billed."""
    if file is not None:
        try:
            payload = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            fail(f"cannot read an order from {file}: {exc}")
    else:
        if not customer or not item:
            fail("give --customer and at least one --item, or --file")
        payload = {
            "customer_id": customer,
            "currency": currency,
            "items": [_parse_item(i) for i in item],
        }
        if order_id:
            payload["order_id"] = order_id
    credentials = dev_credentials(directory)
    try:
        with credentials.client() as client:
            response = client.send_order(
                payload, headers={"X-Request-Id": request_id} if request_id else None
            )
            style = "green" if response.status_code < 300 else "red"
            console.print(f"[{style}]{response.status_code}[/]", end=" ")
            console.print_json(response.text) if response.text else console.print("")
            if response.headers.get("Idempotent-Replayed") == "true":
                console.print("a replay: the answer to the first request with this key")
            # The ids to quote: `conveyor logs --correlation-id` and `conveyor trace`.
            console.print(
                f"request id {response.headers.get('X-Request-Id', '-')} · "
                f"trace {response.headers.get('X-Trace-Id', '-')}"
            )
            if response.status_code >= 300:
                raise typer.Exit(1)
            if wait > 0:
                view = await_billed(client, response.json()["order_id"], wait)
                console.print_json(data=view)
                if view.get("status") != "billed":
                    fail(f"not billed within {wait:.0f} s")
    except OSError as exc:
        fail(f"cannot reach {credentials.endpoint}: {exc}; is `conveyor up` running?")


@app.command()
def upload(
    paths: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, WebP, GIF).")],
    directory: StateDir = DEFAULT_STATE_DIR,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the results.")] = 120.0,
) -> None:
    """Upload images through the presigned flow, wait for their variants, show a table."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        fail(f"not a file: {', '.join(missing)}")
    running(directory)  # says how to start a stack when none runs
    credentials = dev_credentials(directory)
    bars = render.progress()
    try:
        with credentials.client() as client, bars:
            uploading = bars.add_task("uploading", total=len(paths))
            settling = bars.add_task("processing", total=len(paths))
            batch, complete = upload_and_wait(
                client,
                paths,
                timeout,
                on_uploaded=lambda: bars.advance(uploading),
                on_settled=lambda: bars.advance(settling),
            )
    except OSError as exc:
        fail(f"cannot reach the local stack: {exc}; is `conveyor up` running?")
    console.print(render.images_table(batch))
    render.print_request_ids(batch)
    render.print_download_links(batch)
    if not complete:
        fail(f"not every image had a result within {timeout:.0f}s")
    if batch.refused or any(o.status != "processed" for o in batch.outcomes):
        raise typer.Exit(1)
