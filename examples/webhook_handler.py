"""A billing webhook handler instrumented with Threadline.

Billing calls this endpoint when a subscription is activated. The caller (say the ERP integration)
sent the transaction's correlation id in the W3C ``baggage`` header (``sdk.inject``); the handler
continues the same transaction with ``sdk.extract`` and records the business step.

    python examples/webhook_handler.py --port 8081
    curl -X POST localhost:8081/webhooks/billing \
         -H 'baggage: threadline.correlation_id=OPP-1042' -d '{"subscription": "sub_1"}'
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from threadline import sdk


class BillingWebhook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with (
            sdk.extract(dict(self.headers)),
            sdk.step("quote-to-cash", "billing.subscription.activated") as step,
        ):
            step.add_alias("billing.subscription", payload.get("subscription", "unknown"))
            step.set_attribute("plan", payload.get("plan", "standard"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    sdk.configure(service="billing-webhooks", system="stripe")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), BillingWebhook)
    print(f"listening on http://127.0.0.1:{args.port}/webhooks/billing", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sdk.shutdown()


if __name__ == "__main__":
    main()
