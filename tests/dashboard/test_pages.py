"""What a person sees on each page of the dashboard, against a real collector with real events.

Each page is checked against the query API's own answer (formatted the way the dashboard formats
it), and saved as a screenshot in both colour modes under test-artifacts/dashboard/.
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from urllib.parse import quote

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.dashboard import scenario
from tests.dashboard.browser import Browser
from tests.support.collector_process import CollectorProcess
from threadline.dashboard import formatting as fmt

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("seeded")]


def seconds_of(text: str) -> float:
    """A duration as the dashboard writes it ("2h 41m", "58m 12s") back in seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(part[:-1]) * units[part[-1]] for part in text.split())


def test_overview_shows_the_apis_figures(browser: Browser, api: httpx.Client) -> None:
    browser.open("/?range=all", ready="#kpi-transactions")
    overview = api.get("/api/overview").json()
    totals = overview["totals"]

    assert browser.text("#kpi-transactions") == fmt.count(totals["transactions"])
    assert browser.text("#kpi-completed") == fmt.count(totals["completed"])
    assert browser.text("#kpi-in-progress") == fmt.count(totals["in_progress"])
    assert browser.text("#kpi-failed") == fmt.count(totals["failed"])
    assert browser.text("#kpi-completion-rate") == fmt.percent(totals["completion_rate"])
    assert browser.text("#kpi-cycle-p50") == fmt.duration(totals["cycle_time_p50_seconds"])
    assert browser.text("#kpi-cycle-p95") == fmt.duration(totals["cycle_time_p95_seconds"])
    assert browser.text("#kpi-sla-attainment") == fmt.percent(totals["sla_attainment"])
    assert browser.text("#kpi-breached") == fmt.count(totals["breached"])
    assert browser.text("#kpi-stuck") == fmt.count(totals["stuck"])
    retention = api.get("/api/retention").json()
    assert browser.text("#overview-retention") == fmt.retention(
        retention["days"], retention["kept_since"], dt.UTC
    )
    # No sign-in configured here: the first page says who can see it.
    assert browser.text("#sign-in-off").startswith("Sign-in is not configured: anyone who reaches this")

    # At risk: stuck or breached, each once; value at risk: their amounts by currency.
    def total(**filters: str) -> int:
        return api.get("/api/transactions", params={**filters, "limit": 1}).json()["total"]

    at_risk = total(state="stuck") + total(breached="true") - total(state="stuck", breached="true")
    assert browser.text("#kpi-at-risk") == fmt.count(at_risk)
    risk = totals["value_at_risk"]
    assert {item["currency"] for item in risk} == {"USD", "EUR", "GBP"}
    assert browser.text("#kpi-value-at-risk") == fmt.money(
        risk[0]["amount"], risk[0]["currency"], compact=True
    )
    more = browser.text("#kpi-value-at-risk-more")
    for item in risk[1:]:
        assert fmt.money(item["amount"], item["currency"], compact=True) in more

    # The top bottleneck, and one row per workflow.
    assert browser.text("#top-bottleneck-step") == overview["bottlenecks"][0]["step"]
    rows = browser.all_text("#overview-workflows .ag-center-cols-container .ag-row")
    assert len(rows) == len(overview["workflows"]) == len(scenario.PATHS) + 1  # and the undefined one
    for figures in overview["workflows"]:
        assert browser.text(f'#overview-workflows .ag-row a[href^="/workflows/{figures["workflow"]}"]')
    assert browser.visible("#overview-trend .main-svg")
    browser.screenshots("overview")


def test_overview_filters_live_in_the_url(browser: Browser, api: httpx.Client) -> None:
    browser.open("/?workflow=quote-to-cash&range=all", ready="#kpi-transactions")
    figures = api.get("/api/overview", params={"workflow": "quote-to-cash"}).json()["totals"]
    assert browser.text("#kpi-transactions") == fmt.count(figures["transactions"])
    assert "quote-to-cash" in browser.text(".tl-page-subtitle")

    # A range preset is a link: it changes the URL, and the figures follow it.
    browser.click('.tl-segmented a[href*="range=24h"]')
    browser.until(lambda: "range=24h" in browser.path())
    assert "workflow=quote-to-cash" in browser.path()
    browser.wait_text(".tl-page-subtitle", "last 24 hours")


def test_the_theme_is_remembered(browser: Browser) -> None:
    browser.open("/")
    browser.set_theme("dark")
    browser.open("/queue", ready="#queue-grid")
    assert browser.driver.execute_script("return document.documentElement.dataset.bsTheme") == "dark"
    browser.set_theme("light")


def test_queue_lists_the_stuck_transaction_where_it_waits(browser: Browser, api: httpx.Client) -> None:
    browser.open("/queue", ready="#queue-grid .ag-row")
    browser.visible(f'#queue-grid .ag-row[row-id="{scenario.STUCK_KEY}"]')
    cells = {  # the row is split in two: the pinned key column, and the rest
        cell.get_attribute("col-id"): cell.text.strip()
        for cell in browser.driver.find_elements(
            By.CSS_SELECTOR, f'#queue-grid .ag-row[row-id="{scenario.STUCK_KEY}"] .ag-cell'
        )
    }
    assert cells["key"] == scenario.STUCK_KEY
    assert cells["state"] == "Stuck"
    assert "billing.subscription.activated" in cells["waiting_on"] and "stripe" in cells["waiting_on"]
    detail = api.get(f"/api/transactions/{scenario.STUCK_KEY}").json()
    waited = dt.datetime.fromisoformat(detail["as_of"]) - dt.datetime.fromisoformat(
        detail["waiting_on"][0]["due_since"]
    )
    assert abs(seconds_of(cells["waiting_seconds"]) - waited.total_seconds()) < 120
    assert cells["amount"] == "$48,000"

    # The queue holds the open transactions that need attention, as the API counts them.
    open_states: dict[str, str | int] = {
        "state": "stuck,failed,in_progress",
        "attention": "true",
        "limit": 1000,
    }
    queue = api.get("/api/transactions", params=open_states).json()
    shown = {
        e.get_attribute("row-id")
        for e in browser.driver.find_elements(By.CSS_SELECTOR, "#queue-grid .ag-row")
    }
    assert shown == {item["correlation_id"] for item in queue["items"]}
    assert browser.text("#queue-badge") == str(queue["total"])
    stuck = sum(1 for item in queue["items"] if item["state"] == "stuck")
    assert browser.text("#queue-count-stuck").startswith(str(stuck))
    browser.screenshots("queue")

    # Filters are in the URL: only stuck quote-to-cash transactions.
    browser.open("/queue?issue=stuck&workflow=quote-to-cash", ready="#queue-grid .ag-row")
    keys = {
        e.get_attribute("row-id")
        for e in browser.driver.find_elements(By.CSS_SELECTOR, "#queue-grid .ag-row")
    }
    assert scenario.STUCK_KEY in keys
    assert scenario.BREACHED_KEY not in keys  # breached but progressing: not stuck
    assert all((key or "").startswith("OPP-") for key in keys)

    # Completed ones (late, say) are history: listed only when the state filter asks for them.
    browser.open("/queue?state=completed", ready="#queue-grid .ag-row")
    states = {
        e.text for e in browser.driver.find_elements(By.CSS_SELECTOR, '#queue-grid .ag-cell[col-id="state"]')
    }
    assert states == {"Completed"}

    # A chip filters too (it is a link); then one click on a row opens the transaction.
    browser.open("/queue", ready="#queue-grid .ag-row")
    browser.click("#queue-count-breached")
    browser.until(lambda: "issue=breached" in browser.path())
    browser.click(f'#queue-grid .ag-row[row-id="{scenario.BREACHED_KEY}"] .ag-cell[col-id="workflow"]')
    browser.until(lambda: browser.path().startswith(f"/transactions/{scenario.BREACHED_KEY}"))
    browser.wait_text(".tl-page-title", scenario.BREACHED_KEY)


def test_search_finds_a_transaction_by_its_alias(
    browser: Browser, api: httpx.Client, seeded: scenario.Scenario
) -> None:
    browser.open("/")
    search = browser.visible("#search-input")
    search.send_keys(scenario.STUCK_ALIAS, Keys.ENTER)
    browser.until(lambda: browser.path() == f"/transactions/{scenario.STUCK_ALIAS}")
    browser.wait_text(".tl-page-title", scenario.STUCK_KEY)
    browser.settle()

    assert browser.text("#transaction-state") == "Stuck"
    assert scenario.STUCK_ALIAS in browser.text("#transaction-aliases")
    assert "erp.sales_order" in browser.text("#found-by")
    waiting = browser.text("#callout-waiting")
    assert "billing.subscription.activated" in waiting and "stripe" in waiting and "overdue" in waiting
    detail = api.get(f"/api/transactions/{scenario.STUCK_ALIAS}").json()
    left = detail["sla"]["limit_seconds"] - detail["sla"]["elapsed_seconds"]
    headline = browser.text("#sla-clock .tl-sla-headline")
    assert headline.endswith(" left")
    assert abs(seconds_of(headline.removesuffix(" left")) - left) < 120  # the page was drawn moments earlier

    # The swimlane timeline: one lane per system, every event on it (three failed billing attempts).
    lanes = browser.all_text("#transaction-timeline .ytick text")
    assert set(lanes) == set(detail["systems"])
    points = browser.driver.find_elements(By.CSS_SELECTOR, "#transaction-timeline .scatterlayer .point")
    assert len(points) >= len(detail["events"])
    steps = browser.text("#transaction-steps")
    assert "billing.subscription.activated" in steps and "3 attempts" in steps
    assert "timeout: Stripe API did not answer within 30s" in steps

    # An event links to its technical trace, drawn as a span waterfall; the selection is in the URL.
    browser.visible('#events-grid .ag-row .ag-cell[col-id="step"]')
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#events-grid .ag-center-cols-container .ag-row")
    order_row = next(r for r in rows if "erp.order.created" in r.text)
    browser.click(order_row.find_element(By.CSS_SELECTOR, '.ag-cell[col-id="system"]'))
    browser.until(lambda: f"trace={seeded.stuck_trace_id}" in browser.path())
    browser.visible("#trace-waterfall .main-svg")
    names = " ".join(browser.all_text("#trace-waterfall .annotation-text"))
    assert "POST /orders" in names and "salesOrder.create" in names and "INSERT sales_order" in names
    assert "3 spans" in browser.text("#trace-card")
    browser.screenshots("transaction")


def test_an_unknown_key_says_so(browser: Browser) -> None:
    browser.open("/systems")
    before = browser.path()
    browser.visible("#search-input").send_keys("NO-SUCH-KEY-42", Keys.ENTER)
    assert "No transaction has the key “NO-SUCH-KEY-42”" in browser.text("#search-not-found")
    assert browser.path() == before

    browser.open(f"/transactions/{quote('NO-SUCH-KEY-42')}", ready="#not-found")
    assert "No transaction has the key “NO-SUCH-KEY-42”" in browser.text("#not-found")
    browser.screenshot("unknown-key")


def test_violations_and_failures_are_called_out(browser: Browser) -> None:
    browser.open(f"/transactions/{scenario.VIOLATION_KEY}", ready="#callout-violation")
    assert "billing.credit.posted ran before erp.credit.approved" in browser.text("#callout-violation")

    browser.open("/transactions/OPP-1044", ready="#callout-failed")
    failed = browser.text("#callout-failed")
    assert "erp.order.rejected" in failed and "Credit limit exceeded" in failed
    assert browser.text("#transaction-state") == "Failed"


def test_process_map_is_drawn(browser: Browser, api: httpx.Client) -> None:
    browser.open("/workflows/quote-to-cash?range=all", ready="#process-map canvas")
    process = api.get("/api/workflows/quote-to-cash/map").json()
    assert browser.text("#map-transactions") == fmt.count(process["transactions"])
    assert browser.text("#map-variants") == fmt.count(len(process["variants"]))

    # Read the graph Cytoscape drew: every step a node, every directly-follows edge an edge.
    graph = browser.until(
        lambda: browser.driver.execute_script(
            "const cy = document.querySelector('#process-map')._cyreg.cy;"
            "return cy && {nodes: cy.nodes().map(n => n.id()),"
            " edges: cy.edges().map(e => [e.source().id(), e.target().id(), e.data('label'), e.classes()]),"
            " visible: cy.nodes().filter(n => n.renderedBoundingBox().w > 40).length};"
        )
    )
    assert {node["step"] for node in process["nodes"]} <= set(graph["nodes"])
    assert len(graph["edges"]) == len(process["edges"])
    assert graph["visible"] == len(graph["nodes"])  # drawn large enough to read
    labels = {(source, target): label for source, target, label, _ in graph["edges"]}
    for edge in process["edges"]:
        assert (
            labels[(edge["source"], edge["target"])]
            == f"{edge['count']:,} · {fmt.duration(edge['median_seconds'], parts=1)}"
        )
    # Slow: the median transition exceeds the time the target step may take (else stuck_after).
    workflow = next(w for w in api.get("/api/workflows").json() if w["name"] == "quote-to-cash")
    allowed = {s["name"]: s["within_seconds"] or workflow["stuck_after_seconds"] for s in workflow["steps"]}
    expected_slow = {
        (e["source"], e["target"])
        for e in process["edges"]
        if e["source"] != e["target"]
        and e["median_seconds"] > allowed.get(e["target"], workflow["stuck_after_seconds"])
    }
    assert expected_slow  # the scenario has slow hand-offs
    assert {(s, t) for s, t, _, classes in graph["edges"] if "slow" in classes} == expected_slow
    # Dashed: what the definition does not expect, as the API says (a retry is drawn as a loop).
    # Parallel steps follow each other in either order; a step it does not define is not expected.
    unexpected = {(s, t) for s, t, _, classes in graph["edges"] if "unexpected" in classes}
    assert unexpected == {
        (e["source"], e["target"])
        for e in process["edges"]
        if not e["expected"] and e["source"] != e["target"]
    }
    assert ("erp.customer.validated", "cpq.quote.approved") not in unexpected
    assert ("support.entitlement.created", scenario.UNDEFINED_STEP) in unexpected

    # A defined workflow's variants are split: the most common one leads the table of its verdict.
    top = process["variants"][0]
    table = "conforming-variants-grid" if top["conforming"] else "deviating-variants-grid"
    first = browser.visible(f'#{table} .ag-row[row-index="0"]').text
    assert fmt.percent(top["share"]) in first
    browser.screenshots("process-map")


def test_conformance_names_each_deviation_and_a_click_highlights_its_variants_and_edges(
    browser: Browser, api: httpx.Client
) -> None:
    browser.open("/workflows/quote-to-cash?range=all", ready="#map-conformance")
    process = api.get("/api/workflows/quote-to-cash/map").json()
    result = process["conformance"]
    assert browser.text("#map-conformance-share") == fmt.percent(result["conforming_share"])
    shown = browser.all_text("#map-deviations .tl-deviation")
    assert result["deviations"] and len(shown) == len(result["deviations"])  # the scenario deviates
    for text, deviation in zip(shown, result["deviations"], strict=True):
        assert deviation["description"] in text
        assert fmt.plural(deviation["transactions"], "transaction") in text

    def rows(grid: str, marked: str = "") -> set[str]:
        """The row ids a grid has drawn (``marked``: only the rows with that class)."""
        selector = f"#{grid} .ag-center-cols-container .ag-row{marked}"
        drawn = browser.driver.find_elements(By.CSS_SELECTOR, selector)
        return {row.get_attribute("row-id") or "" for row in drawn}

    def ranks(conforming: bool) -> set[str]:
        return {str(n + 1) for n, v in enumerate(process["variants"]) if v["conforming"] is conforming}

    assert rows("conforming-variants-grid") <= ranks(True) and rows("conforming-variants-grid")
    assert rows("deviating-variants-grid") <= ranks(False) and rows("deviating-variants-grid")

    # The deviation with the most transactions: its variants, and the edges they take around its steps.
    chosen = result["deviations"][0]
    steps = {chosen["step"], chosen["other"]} - {None}
    having = {
        str(n + 1): v["steps"]
        for n, v in enumerate(process["variants"])
        if chosen["description"] in [d["description"] for d in v["deviations"]]
    }
    expected_edges = {(a, b) for path in having.values() for a, b in pairwise(path) if {a, b} & steps}
    browser.click("#map-deviations .tl-deviation")
    highlighted = browser.until(
        lambda: browser.driver.execute_script(
            "const cy = document.querySelector('#process-map')._cyreg.cy;"
            "const edges = cy && cy.edges('.highlight').map(e => [e.source().id(), e.target().id()]);"
            "return edges && edges.length ? edges : null;"
        )
    )
    assert {tuple(edge) for edge in highlighted} == expected_edges
    marked = browser.until(lambda: rows("deviating-variants-grid", ".tl-row-highlight") or None)
    assert marked == set(having) & rows("deviating-variants-grid")


def test_what_the_definitions_do_not_name_is_called_out_and_mapped(
    browser: Browser, api: httpx.Client
) -> None:
    browser.open(f"/transactions/{scenario.UNDEFINED_STEP_KEY}", ready="#callout-undefined")
    callout = browser.text("#callout-undefined")
    assert "Step not in the definition" in callout and scenario.UNDEFINED_STEP in callout

    browser.open(f"/transactions/{scenario.IMPORTED_KEY}", ready="#callout-undefined")
    callout = browser.text("#callout-undefined")
    assert "Workflow not defined" in callout and scenario.IMPORTED_WORKFLOW in callout
    browser.screenshots("undefined-workflow")

    # The process map's picker offers the workflow seen only in the events, and draws its map.
    browser.open("/workflows/quote-to-cash?range=all", ready="#process-map canvas")
    browser.click("#map-workflow")
    label = f"{scenario.IMPORTED_WORKFLOW} (not defined)"
    option = browser.until(
        lambda: next(
            (e for e in browser.driver.find_elements(By.XPATH, f'//*[text()="{label}"]') if e.is_displayed()),
            None,
        )
    )
    option.click()
    browser.until(lambda: browser.path().startswith(f"/workflows/{scenario.IMPORTED_WORKFLOW}?range=all"))
    browser.wait_text("#callout-map-undefined", scenario.IMPORTED_WORKFLOW)
    browser.visible("#process-map canvas")
    process = api.get(f"/api/workflows/{scenario.IMPORTED_WORKFLOW}/map").json()
    assert browser.text("#map-transactions") == fmt.count(process["transactions"]) == "1"


def test_system_health_matches_the_api(browser: Browser, api: httpx.Client) -> None:
    browser.open("/systems?range=all", ready="#system-tile-stripe")
    report = api.get("/api/systems").json()
    for system in report["systems"]:
        tile = browser.text(f"#system-tile-{system['system']}")
        assert fmt.percent(system["error_rate"]) in tile
        assert fmt.milliseconds(system["latency_p95_ms"]) in tile
    for chart in ("#systems-error-rate", "#systems-latency", "#systems-events", "#systems-retries"):
        assert browser.visible(f"{chart} .main-svg")
    browser.screenshots("systems")

    # A tile narrows the charts to its system, through the URL.
    browser.click("#system-tile-stripe")
    browser.until(lambda: "system=stripe" in browser.path())
    browser.settle()
    drawn = browser.until(
        lambda: browser.driver.execute_script(
            "const plot = document.querySelector('#systems-events .js-plotly-plot');"
            "return plot && plot.data && plot.data.length === 1 && plot.data.map(trace => trace.name);"
        )
    )
    assert drawn == ["stripe"]


def test_an_alias_conflict_is_shown_on_both_transactions(browser: Browser, api: httpx.Client) -> None:
    for key, other in (
        (scenario.CONFLICT_KEY, scenario.CONFLICT_OTHER),
        (scenario.CONFLICT_OTHER, scenario.CONFLICT_KEY),
    ):
        [conflict] = api.get(f"/api/transactions/{key}").json()["alias_conflicts"]
        browser.open(f"/transactions/{key}", ready="#callout-alias-conflict")
        callout = browser.text("#callout-alias-conflict")
        assert conflict["message"] in callout and other in callout
    browser.screenshots("alias-conflict")
    # The callout links to the other side.
    browser.click(f'#callout-alias-conflict a[href="/transactions/{scenario.CONFLICT_KEY}"]')
    browser.wait_text(".tl-page-title", scenario.CONFLICT_KEY)


def stuck_onboarding(collector: CollectorProcess, key: str) -> None:
    """A stuck onboarding under ``key``: synced 4h50m ago, nothing since (stuck after 2h, SLA 1 day)."""
    now, hour = dt.datetime.now(dt.UTC), dt.timedelta(hours=1)
    steps = [
        ("crm.account.created", "salesforce", 5 * hour),
        ("middleware.account.synced", "mulesoft", 4.8 * hour),
    ]
    events = [
        {
            "correlation_id": key,
            "workflow": "customer-onboarding",
            "step": step,
            "system": system,
            "timestamp": (now - ago).isoformat(),
        }
        for step, system, ago in steps
    ]
    assert httpx.post(collector.url + "/v1/events", json={"events": events}).status_code == 200


def test_a_key_holding_slashes_is_found_by_search_and_opened_from_the_queue(
    browser: Browser, collector: CollectorProcess
) -> None:
    """Odoo numbers its sales orders "SO/2026/00042": the key travels percent-encoded, whole."""
    key = "SO/2026/00042"
    stuck_onboarding(collector, key)
    page = f"/transactions/{quote(key, safe='')}"

    browser.open("/")
    browser.visible("#search-input").send_keys(key, Keys.ENTER)
    browser.until(lambda: browser.path() == page, message=f"search went to {browser.path()}")
    browser.wait_text(".tl-page-title", key)
    assert browser.text("#transaction-state") == "Stuck"

    row = f'#queue-grid .ag-row[row-id="{key}"]'
    browser.open("/queue?workflow=customer-onboarding", ready=row)
    browser.click(f'{row} .ag-cell[col-id="workflow"]')
    browser.until(lambda: browser.path() == page, message=f"the row went to {browser.path()}")
    browser.wait_text(".tl-page-title", key)

    browser.open("/queue?workflow=customer-onboarding", ready=row)
    browser.click(f'{row} .ag-cell[col-id="key"] a')
    browser.until(lambda: browser.path() == page, message=f"the key link went to {browser.path()}")
    browser.wait_text(".tl-page-title", key)

    browser.open(page, ready=".tl-page-title")  # the address shared in a chat, or an alert's link
    browser.wait_text(".tl-page-title", key)
    assert browser.text("#transaction-state") == "Stuck"
    browser.screenshot("transaction-slash-key")


def test_a_key_ending_in_a_space_is_found_as_typed_and_a_pasted_one_without_its_blanks(
    browser: Browser, collector: CollectorProcess
) -> None:
    stuck_onboarding(collector, "PO 77 ")
    stuck_onboarding(collector, "PO-78")
    browser.open("/")
    browser.visible("#search-input").send_keys("PO 77 ", Keys.ENTER)
    browser.until(lambda: browser.path() == "/transactions/PO%2077%20", message=f"went to {browser.path()}")
    browser.wait_text(".tl-page-title", "PO 77")
    assert browser.text("#transaction-state") == "Stuck"

    browser.visible("#search-input").send_keys("  PO-78 ", Keys.ENTER)
    browser.until(lambda: browser.path() == "/transactions/PO-78", message=f"went to {browser.path()}")
    browser.wait_text(".tl-page-title", "PO-78")
    assert browser.text("#transaction-state") == "Stuck"


# Whether any link (an HTML or SVG <a>) of the page goes where a sender's name pointed it.
LINKS_TO = (
    "return [...document.querySelectorAll('a')].filter(a => ["
    "a.getAttribute('href'), a.getAttribute('xlink:href'), a.href && a.href.baseVal"
    "].some(target => typeof target === 'string' && target.includes(arguments[0]))).length;"
)


def chart_text(browser: Browser, chart: str) -> str:
    """What a chart shows, as one text (its SVG's text content: tick labels, legend, labels)."""
    return str(
        browser.driver.execute_script(
            f"return document.querySelector('{chart} .main-svg').parentNode.textContent;"
        )
    )


def test_names_sent_as_html_show_as_typed_in_every_chart(
    browser: Browser, api: httpx.Client, collector: CollectorProcess
) -> None:
    scenario.html_labelled().send(collector.url)
    detail = api.get(f"/api/transactions/{scenario.HTML_KEY}").json()
    [trace_id] = {event["trace_id"] for event in detail["events"] if event["trace_id"]}

    browser.open(f"/transactions/{scenario.HTML_KEY}?trace={trace_id}", ready="#trace-waterfall .main-svg")
    browser.visible("#transaction-timeline .main-svg")
    browser.settle()
    timeline, waterfall = (
        chart_text(browser, "#transaction-timeline"),
        chart_text(browser, "#trace-waterfall"),
    )
    for shown in (timeline, waterfall):
        assert scenario.LINK in shown and scenario.BOLD in shown, shown
    assert {scenario.LINK, scenario.BOLD} <= set(browser.all_text("#transaction-timeline .ytick text"))
    assert browser.driver.execute_script(LINKS_TO, scenario.LINK_TARGET) == 0
    browser.screenshot("html-names-transaction")

    browser.open("/systems?range=all", ready="#systems-events .main-svg")
    browser.settle()
    for chart in ("#systems-error-rate", "#systems-latency", "#systems-events"):
        shown = chart_text(browser, chart)
        assert scenario.LINK in shown and scenario.BOLD in shown, (chart, shown)
    assert browser.driver.execute_script(LINKS_TO, scenario.LINK_TARGET) == 0
    browser.screenshot("html-names-systems")
