// The MFTPlus dashboard's only script (served from /static, so the CSP allows no inline code):
// live regions refreshed over server-sent events, and copy buttons. Every page works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const region of document.querySelectorAll("[data-live]")) {
    follow(region);
  }
  wireCopyButtons(document);
});

// Shows and wires the copy buttons under `root` (the page, or a region just refreshed).
function wireCopyButtons(root) {
  for (const button of root.querySelectorAll("[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    });
  }
}

// Re-reads the region's fragment whenever the server says its data changed. The fragment is
// rendered and escaped by the server, like the page it came from.
function follow(region) {
  const events = new EventSource(region.dataset.live);
  let busy = false;
  events.addEventListener("changed", async () => {
    if (busy) {
      return;
    }
    busy = true;
    try {
      const answer = await fetch(region.dataset.fragment, {
        credentials: "same-origin",
        headers: { accept: "text/html" },
      });
      if (answer.ok && !answer.redirected) {
        region.innerHTML = await answer.text();
        wireCopyButtons(region);
        region.dataset.updated = String(Date.now());
      } else {
        // The session ended: stop following; the next navigation asks to sign in.
        events.close();
      }
    } finally {
      busy = false;
    }
  });
}
