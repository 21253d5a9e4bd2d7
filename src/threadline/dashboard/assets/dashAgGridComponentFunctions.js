/* Cell renderers for the dashboard's AG Grid tables (dash-ag-grid looks them up here by name). */
(function () {
  "use strict";
  var funcs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  var h = function () { return React.createElement.apply(React, arguments); };

  var LABELS = { in_progress: "In progress", not_started: "Not started", ok: "Done" };
  function label(state) {
    if (!state) { return ""; }
    return LABELS[state] || (state.charAt(0).toUpperCase() + state.slice(1).replace(/_/g, " "));
  }

  /* Navigate inside the app as dcc.Link does; a modified click (new tab, new window) is left alone. */
  function navigate(event, href) {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || event.button !== 0) { return; }
    event.preventDefault();
    event.stopPropagation();
    window.history.pushState({}, "", href);
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
    window.scrollTo(0, 0);
  }

  funcs.StateBadge = function (props) {
    if (!props.value) { return null; }
    return h("span", { className: "tl-badge tl-state-" + props.value },
      h("span", { className: "tl-dot" }), label(props.value));
  };

  funcs.Link = function (props) {
    var href = props.data && props.data.href;
    if (!href) { return props.value; }
    return h("a", {
      href: href, className: "tl-cell-link",
      onClick: function (event) { navigate(event, href); }
    }, props.value);
  };

  /* The event table's trace column: a real link (?trace=...), though a plain click on the row selects it. */
  funcs.TraceLink = function (props) {
    if (!props.value) { return h("span", { className: "tl-muted" }, "—"); }
    var href = "?trace=" + encodeURIComponent(props.value);
    return h("a", {
      href: href, className: "tl-cell-link tl-trace-link", title: "Trace " + props.value,
      onClick: function (event) {
        if (!(event.metaKey || event.ctrlKey || event.shiftKey)) { event.preventDefault(); }
      }
    }, h("i", { className: "bi bi-bar-chart-steps me-1" }), "View");
  };

  funcs.Tags = function (props) {
    var tags = props.value || [];
    return h("span", { className: "tl-tags" }, tags.map(function (tag, index) {
      return h("span", { key: index, className: "tl-tag tl-tone-" + tag.tone }, tag.text);
    }));
  };

  /* Where a transaction waits: "step @ system", overdue ones marked. */
  funcs.StepAt = function (props) {
    var waits = props.value || [];
    if (!waits.length) { return h("span", { className: "tl-muted" }, "—"); }
    return h("span", { className: "tl-waits" }, waits.map(function (wait, index) {
      return h("span", { key: index, className: "tl-wait" + (wait.overdue ? " overdue" : "") },
        h("span", { className: "tl-mono" }, wait.step),
        wait.system ? h("span", { className: "tl-at" }, "@ " + wait.system) : null);
    }));
  };

  /* A share as a number and a thin bar. */
  funcs.Meter = function (props) {
    var value = props.data && props.colDef ? props.data[props.colDef.field] : null;
    if (!value || value.value === null || value.value === undefined) { return h("span", { className: "tl-muted" }, "—"); }
    var share = Math.max(0, Math.min(1, value.value));
    var tone = value.kind === "share" ? "accent" : share >= 0.95 ? "good" : share >= 0.8 ? "warn" : "bad";
    return h("span", { className: "tl-meter" },
      h("span", { className: "tl-meter-text" }, value.text),
      h("span", { className: "tl-meter-track" },
        h("span", { className: "tl-meter-fill tl-meter-" + tone, style: { width: (share * 100).toFixed(1) + "%" } })));
  };

  /* A variant's path: its steps joined by arrows. */
  funcs.Path = function (props) {
    var steps = props.value || [];
    var parts = [];
    steps.forEach(function (step, index) {
      if (index) { parts.push(h("i", { key: "a" + index, className: "bi bi-arrow-right tl-path-arrow" })); }
      parts.push(h("span", { key: "s" + index, className: "tl-path-step" }, step));
    });
    return h("span", { className: "tl-path" }, parts);
  };

  /* An alert's severity: critical red, warning amber, info blue (the row's severity, or the cell's). */
  var SEVERITY_ICONS = { critical: "exclamation-octagon-fill", warning: "exclamation-triangle-fill", info: "info-circle-fill" };
  funcs.Severity = function (props) {
    var severity = (props.data && props.data.severity) || props.value;
    if (!severity) { return null; }
    return h("span", { className: "tl-badge tl-severity tl-severity-" + severity },
      h("i", { className: "bi bi-" + (SEVERITY_ICONS[severity] || "bell") }), label(severity));
  };

  funcs.AlertStatus = function (props) {
    if (props.value === "firing") {
      return h("span", { className: "tl-badge tl-alert-firing" }, h("span", { className: "tl-dot tl-pulse" }), "Firing");
    }
    return h("span", { className: "tl-badge tl-state-completed" }, h("i", { className: "bi bi-check2" }), "Resolved");
  };

  var DELIVERY_ICONS = { delivered: "check-circle-fill", failed: "x-circle-fill", pending: "arrow-repeat", skipped: "dash-circle", silenced: "bell-slash" };

  /* One line per receiver: its latest notification, with the attempts and the last error. */
  funcs.Deliveries = function (props) {
    var lines = props.value || [];
    if (!lines.length) { return h("span", { className: "tl-muted" }, "no receiver"); }
    return h("span", { className: "tl-deliveries" }, lines.map(function (line) {
      return h("span", { key: line.receiver, className: "tl-delivery tl-delivery-" + line.status, title: line.title },
        h("i", { className: "bi bi-" + (DELIVERY_ICONS[line.status] || "circle") }),
        h("span", { className: "tl-delivery-receiver" }, line.receiver),
        h("span", { className: "tl-delivery-text" }, line.text),
        line.error ? h("span", { className: "tl-delivery-error" }, line.error) : null);
    }));
  };

  /* One delivery attempt's result. */
  funcs.Delivery = function (props) {
    if (!props.value) { return null; }
    return h("span", { className: "tl-delivery tl-delivery-" + props.value },
      h("i", { className: "bi bi-" + (DELIVERY_ICONS[props.value] || "circle") }), label(props.value));
  };

  funcs.SystemName = function (props) {
    var tone = (props.data && props.data.tone) || "neutral";
    return h("span", { className: "tl-system-name" },
      h("span", { className: "tl-health-dot tl-fill-" + tone }), props.value);
  };
})();
