// Tidemark's live pages: follows GET /v1/stream (the page's data-live URL, from the position the
// page shows) and, when an event arrives, fetches the page again and swaps its <main>, at most
// one fetch at a time and one a second. The browser reconnects a dropped stream by itself
// (Last-Event-ID); a stream it gave up on (refused: the subscriber limit, a token gone) is opened
// again after a growing pause. The page is complete without it: no script, no update.
(function () {
  "use strict";
  var body = document.body;
  var src = body.getAttribute("data-live");
  if (!src || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var badge = document.querySelector(".live-state");
  function state(name, title) {
    body.setAttribute("data-live-state", name);
    if (badge) {
      badge.hidden = false;
      badge.className = "live-state live-" + name;
      badge.title = title;
    }
  }
  var busy = false;
  var again = false;
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var shown = document.querySelector("main");
        if (fresh && shown) {
          shown.replaceWith(document.importNode(fresh, true));
          body.setAttribute("data-live-updates", String(Number(body.getAttribute("data-live-updates") || 0) + 1));
        }
        if (stream && stream.readyState === EventSource.OPEN) {
          state("open", "following the log: new events show without a reload");
        }
      })
      .catch(function (error) {
        state("stale", "could not reload the page: " + error.message);
      })
      .then(function () {
        window.setTimeout(function () {
          busy = false;
          if (again) {
            again = false;
            refresh();
          }
        }, 1000);
      });
  }
  // Where a new stream starts: after the last position seen (the page shows everything up to it).
  var after = body.getAttribute("data-live-after") || "0";
  var stream = null;
  var pause = 2000;
  function follow() {
    var url = src + (src.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(after);
    stream = new EventSource(url, { withCredentials: true });
    stream.addEventListener("open", function () {
      pause = 2000;
      state("open", "following the log: new events show without a reload");
    });
    // `moved`: the page's stream sends positions only (`positions_only=true`).
    function moved(message) {
      after = message.lastEventId || after;
      body.setAttribute("data-live-seq", after);
      refresh();
    }
    stream.addEventListener("moved", moved);
    stream.addEventListener("event", moved);
    stream.addEventListener("error", function () {
      if (stream.readyState === EventSource.CLOSED) {
        // Refused: the browser will not try again by itself.
        state("stale", "the live stream was refused: trying again in " + pause / 1000 + " s");
        window.setTimeout(follow, pause);
        pause = Math.min(pause * 2, 60000);
      } else {
        // Dropped: the browser reconnects by itself with Last-Event-ID.
        state("reconnecting", "the live stream was cut off: reconnecting");
      }
    });
  }
  follow();
})();
