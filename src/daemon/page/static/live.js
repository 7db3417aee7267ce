// lethe status page: live progress of the runs under way, the only script the page has.
// Every element with data-live-run polls its run's JSON (same origin: the session
// cookie is sent) once a second and updates its counters; when a run ends the page
// reloads, so the finished run is shown as the server renders it.
"use strict";
(function () {
  const FINAL = ["succeeded", "failed", "cancelled", "skipped"];
  const BADGE = { succeeded: "badge ok", failed: "badge bad", running: "badge run", cancelled: "badge warn" };
  const nodes = Array.from(document.querySelectorAll("[data-live-run]"));
  if (nodes.length === 0) return;

  const count = (n) => Number(n).toLocaleString("en-US");
  // Decimal units, as the server writes them.
  const size = (n) => {
    if (n < 1000) return Math.round(n) + " B";
    const units = ["kB", "MB", "GB", "TB", "PB"];
    let value = n / 1000, unit = 0;
    while (value >= 999.95 && unit + 1 < units.length) { value /= 1000; unit += 1; }
    return value.toFixed(1) + " " + units[unit];
  };
  const set = (node, field, text) => {
    const el = node.querySelector('[data-field="' + field + '"]');
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  };

  async function poll() {
    let ended = false;
    for (const node of nodes) {
      try {
        const answer = await fetch(node.dataset.json, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!answer.ok) continue;
        const run = await answer.json();
        const badge = set(node, "status", run.status);
        if (badge) badge.className = BADGE[run.status] || "badge";
        const p = run.progress;
        set(node, "phase", p.phase);
        set(node, "tables", p.tables_done + "/" + p.tables_total);
        set(node, "rows", count(p.rows));
        if (run.started_at) {
          const seconds = Math.max((Date.now() - Date.parse(run.started_at)) / 1000, 0.001);
          set(node, "rate", size(p.bytes / seconds) + "/s");
        }
        if (FINAL.includes(run.status)) ended = true;
      } catch (e) {
        // The daemon restarting, a dropped connection: try again next tick.
      }
    }
    if (ended) {
      window.setTimeout(() => window.location.reload(), 400);
    } else {
      window.setTimeout(poll, 1000);
    }
  }
  window.setTimeout(poll, 500);
})();
