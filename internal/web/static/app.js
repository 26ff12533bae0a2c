// Live progress: refreshes every element marked data-batch from the API,
// with the rate, the time taken and an estimate of the time left; a batch
// that finished is read once more and then left alone.
(function () {
  const rows = [...document.querySelectorAll("[data-batch]")];
  if (!rows.length) return;
  const fmt = (ms) => {
    const s = Math.round(ms / 1000);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  };
  const seen = new Map(); // batch → [{at, ended}] of recent readings
  let timer;
  async function refresh() {
    let running = 0;
    for (const row of rows) {
      if (row.dataset.finished) continue;
      running++;
      try {
        const r = await fetch("/api/v1/batches/" + encodeURIComponent(row.dataset.batch), { credentials: "same-origin" });
        if (!r.ok) continue;
        const b = await r.json();
        const total = Math.max(b.total, b.enqueued, 1);
        row.querySelector(".done").style.width = (100 * b.done / total) + "%";
        const f = row.querySelector(".failed");
        f.style.left = (100 * b.done / total) + "%";
        f.style.width = (100 * b.failed / total) + "%";
        const ended = b.done + b.failed + b.canceled + b.skipped;
        const now = Date.now();
        const hist = seen.get(b.id) ?? [];
        hist.push({ at: now, ended });
        while (hist.length > 1 && now - hist[0].at > 30000) hist.shift();
        seen.set(b.id, hist);
        // The picture: jobs ended over the last ten minutes of this page.
        const all = seen.get(b.id + "/all") ?? [];
        all.push({ at: now, ended });
        while (all.length > 1 && now - all[0].at > 600000) all.shift();
        seen.set(b.id + "/all", all);
        const line = row.querySelector(".spark polyline");
        if (line && all.length > 1) {
          const t0 = all[0].at, dt = Math.max(1, now - t0), top = Math.max(1, total);
          line.setAttribute("points", all.map((p) => (300 * (p.at - t0) / dt).toFixed(1) + "," + (40 - 40 * p.ended / top).toFixed(1)).join(" "));
        }
        const started = Date.parse(b.started);
        const until = b.finished ? Date.parse(b.finished) : now;
        let extra = " · " + fmt(until - started) + (b.finished ? "" : " so far");
        const span = (hist.at(-1).at - hist[0].at) / 1000;
        const rate = span > 0 ? (hist.at(-1).ended - hist[0].ended) / span : 0;
        if (!b.finished && rate > 0) {
          extra += " · " + rate.toFixed(rate < 10 ? 1 : 0) + " jobs/s";
          if (b.listed) extra += " · about " + fmt(1000 * Math.max(0, b.total - ended) / rate) + " left";
        }
        row.querySelector(".counts").textContent =
          b.done + " done, " + b.failed + " failed of " + (b.listed ? b.total : b.enqueued + "+") +
          (b.finished ? " — finished" : (b.cancel_requested ? " — canceling" : "")) + extra;
        if (b.finished) row.dataset.finished = "1";
      } catch (e) { /* next tick */ }
    }
    if (running === 0) clearInterval(timer);
  }
  refresh();
  timer = setInterval(refresh, 1000);
})();
