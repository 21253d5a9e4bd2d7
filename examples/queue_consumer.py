"""A queue consumer instrumented with Threadline.

The producer (the CRM integration) puts each message on the queue with headers that carry the
correlation id (``sdk.inject(headers)``); the consumer (the ERP integration) continues the
transaction with ``sdk.extract(headers)``. Any broker works the same way: Kafka, SQS and RabbitMQ
all carry a map of string headers beside the body. Here an in-process queue stands in for one.

    python examples/queue_consumer.py
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field

from threadline import sdk


@dataclass
class Message:
    body: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


def publish_won_opportunity(broker: queue.Queue[Message], opportunity: str, amount: float) -> None:
    """CRM side: the opportunity is won; hand it to ERP with the correlation in the headers."""
    with sdk.correlate(opportunity):
        sdk.event("quote-to-cash", "crm.opportunity.won", amount=amount, currency="USD")
        message = Message(body={"opportunity": opportunity, "amount": str(amount)})
        sdk.inject(message.headers)
        broker.put(message)


def create_sales_order(message: Message) -> str:
    return "SO-" + message.body["opportunity"].split("-")[-1]


def consume(broker: queue.Queue[Message]) -> None:
    """ERP side: create the sales order, announce its number as an alias of the transaction."""
    while True:
        try:
            message = broker.get(timeout=0.5)
        except queue.Empty:
            return
        with sdk.extract(message.headers), sdk.step("quote-to-cash", "erp.order.created") as step:
            sales_order = create_sales_order(message)
            step.add_alias("erp.sales_order", sales_order)


def main() -> None:
    sdk.configure(service="crm-erp-sync", system="boomi")
    broker: queue.Queue[Message] = queue.Queue()
    publish_won_opportunity(broker, "OPP-1042", 48_000.0)
    consume(broker)
    delivered = sdk.flush(10)
    print("events delivered" if delivered else "collector not reachable: events are spooled for later")
    sdk.shutdown()


if __name__ == "__main__":
    main()
