// homing dashboard: the live parts, in plain JavaScript (no build step, no framework).
// A <main data-live="N"> is refreshed every N seconds by fetching the same page and
// swapping in its <main>: the HTML comes from the server already escaped, and
// nothing in it runs (scripts inserted through innerHTML never execute). A page
// with a form being filled in is never live.
"use strict";

(function () {
  const main = document.querySelector("main[data-live]");
  if (!main) return;
  const every = Math.max(1, Number(main.dataset.live) || 5) * 1000;
  let busy = false;
  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const res = await fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.querySelector("main[data-live]");
      if (fresh) main.innerHTML = fresh.innerHTML;
    } catch (_) {
      // The server is away: keep what is shown, try again next time.
    } finally {
      busy = false;
    }
  }
  window.setInterval(refresh, every);
})();
