"""PII redaction reaches the upstream: the fake backend must never see the detected values."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import make_config

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


async def test_redacted_values_never_reach_the_upstream_and_blocks_stop_it(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    routing = {
        "signals": [{
            "name": "pii", "type": "pii", "timeout_s": 30,
            "policies": {"EMAIL_ADDRESS": "redact", "CREDIT_CARD": "block"},
        }],
        "decisions": [{
            "name": "no-cards", "priority": 10, "action": "block",
            "when": {"signal": "pii", "label": "action:block"},
        }],
    }
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}, routing=routing))

    text = f"Please write to {EMAIL} about the invoice."
    response = await gw.chat("m1", text)
    assert response.status_code == 200
    [seen] = backend.inference_requests()
    forwarded = seen.body.decode()
    assert EMAIL not in forwarded
    assert "about the invoice" in forwarded  # the rest of the message is intact

    blocked = await gw.chat("m1", f"my card is {CARD}")
    assert blocked.status_code == 400
    assert blocked.json()["error"]["code"] == "content_policy_violation"
    assert len(backend.inference_requests()) == 1  # the blocked request never went upstream
    await gw.stop()
    records = records_path.read_text()
    assert len(gw.records()) == 2
    assert CARD not in records and EMAIL not in records
