/* Browser-side pieces of the dashboard: the colour mode, the time zone and the tab title. */
(function () {
  "use strict";
  var KEY = "threadline-theme";

  function preferred() {
    try {
      var saved = window.localStorage.getItem(KEY);
      if (saved === "light" || saved === "dark") { return saved; }
    } catch (error) { /* storage may be blocked; fall back to the system setting */ }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function apply(theme) {
    document.documentElement.setAttribute("data-bs-theme", theme);
  }

  // As early as possible, so a dark page does not flash white while it loads.
  apply(preferred());

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    threadline: {
      /* The toggle's click switches the theme; the first call (page load) reports the saved one. */
      theme: function (clicks, current) {
        var ctx = window.dash_clientside.callback_context;
        var theme = current || preferred();
        if (ctx && ctx.triggered && ctx.triggered.length && ctx.triggered[0].prop_id === "theme-toggle.n_clicks" && clicks) {
          theme = theme === "dark" ? "light" : "dark";
          try { window.localStorage.setItem(KEY, theme); } catch (error) { /* not saved: fine */ }
        }
        apply(theme);
        if (theme === current) { return window.dash_clientside.no_update; }
        return theme;
      },
      toggleIcon: function (theme) {
        return theme === "dark" ? "bi bi-sun" : "bi bi-moon-stars";
      },
      timeZone: function (_pathname, current) {
        var zone = "UTC";
        try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (error) { /* UTC */ }
        return zone === current ? window.dash_clientside.no_update : zone;
      },
      title: function (title) {
        document.title = title ? title + " · Threadline" : "Threadline";
        return window.dash_clientside.no_update;
      },
      /* A click that opens a panel at the top of the page (the Alerts page's detail) scrolls up to it. */
      toTop: function (cell) {
        if (cell && cell.colId !== "subject") { window.scrollTo({ top: 0, behavior: "smooth" }); }
        return window.dash_clientside.no_update;
      },
      refreshInterval: function (seconds) {
        var value = parseInt(seconds || "0", 10);
        return [value > 0 ? value * 1000 : 3600000, !(value > 0)];
      }
    }
  });
})();
