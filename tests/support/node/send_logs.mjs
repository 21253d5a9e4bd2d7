// Business events as OpenTelemetry log records, sent by the official Node.js OTLP logs exporter
// (protobuf) through the SDK's batch processor, as a Node integration would send them.
//
//   node send_logs.mjs URL KEY CORRELATION_ID TRACE_ID SPAN_ID
//
// URL is the collector (http://127.0.0.1:4318), KEY its API key ("" for none). Exits 1 when an
// export was not acknowledged.
import { context, trace, TraceFlags } from "@opentelemetry/api";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";

const [url, key, correlationId, traceId, spanId] = process.argv.slice(2);

class RecordingExporter extends OTLPLogExporter {
  failures = [];

  export(records, done) {
    super.export(records, (result) => {
      if (result.code !== 0) this.failures.push(String(result.error));
      done(result);
    });
  }
}

const exporter = new RecordingExporter({
  url: `${url}/v1/logs`,
  headers: key ? { Authorization: `Bearer ${key}` } : {},
});
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ "service.name": "salesforce" }),
  processors: [new BatchLogRecordProcessor({ exporter })],
});
const logger = provider.getLogger("threadline.tests.node");
// The records belong to this span of the caller's trace.
const inSpan = trace.setSpanContext(context.active(), {
  traceId,
  spanId,
  traceFlags: TraceFlags.SAMPLED,
});
const business = { "threadline.correlation_id": correlationId, "threadline.workflow": "quote-to-cash" };

logger.emit({
  eventName: "crm.opportunity.won",
  severityNumber: SeverityNumber.INFO,
  body: "opportunity won",
  attributes: { ...business, "threadline.amount": 129.5, "threadline.currency": "EUR" },
  context: inSpan,
});
logger.emit({
  eventName: "erp.order.created",
  severityNumber: SeverityNumber.ERROR,
  body: "the order was refused",
  attributes: { ...business, "threadline.system": "netsuite" },
  exception: new Error("credit limit exceeded"),
  context: inSpan,
});
logger.emit({ severityNumber: SeverityNumber.INFO, body: "cache warmed", context: inSpan });

await provider.shutdown();
if (exporter.failures.length) {
  console.error(`export failed: ${exporter.failures.join("; ")}`);
  process.exit(1);
}
