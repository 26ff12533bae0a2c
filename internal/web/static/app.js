// Live progress: refreshes every element marked data-batch from the API.
(function () {
  const rows = document.querySelectorAll("[data-batch]");
  if (!rows.length) return;
  async function refresh() {
    for (const row of rows) {
      try {
        const r = await fetch("/api/v1/batches/" + encodeURIComponent(row.dataset.batch), { credentials: "same-origin" });
        if (!r.ok) continue;
        const b = await r.json();
        const total = Math.max(b.total, b.enqueued, 1);
        row.querySelector(".done").style.width = (100 * b.done / total) + "%";
        const f = row.querySelector(".failed");
        f.style.left = (100 * b.done / total) + "%";
        f.style.width = (100 * b.failed / total) + "%";
        row.querySelector(".counts").textContent =
          b.done + " done, " + b.failed + " failed of " + (b.listed ? b.total : b.enqueued + "+") +
          (b.finished ? " — finished" : (b.cancel_requested ? " — canceling" : ""));
      } catch (e) { /* next tick */ }
    }
  }
  refresh();
  setInterval(refresh, 1000);
})();
