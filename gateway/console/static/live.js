/* The Live page (templates/live.html): one Server-Sent Event a second from /console/live/stream.
 *   "history": {t, local, ticks: [[t, allow, flag, block], ...], items: [...]}  on (re)connecting
 *   "tick":    {t, local, counts: {allow, flag, block}, items: [...]}           once a second
 *   "end":     {reason: "replaced"}     a newer stream of this session or user: stop, no reconnect
 * Items are oldest first; the table shows the newest on top, 50 rows at most. Message texts are
 * the attackers': the DOM is built with createElement / textContent only, never innerHTML.
 * Span offsets count Unicode code points (Python string indices), hence Array.from(text).
 * Times in the table and the "updated" label come formatted by the server (Almaty, `local`,
 * `date`): the browser's time-zone data may be old (Almaty moved to UTC+5 in 2024); only the
 * chart's axis and legend use the browser's.
 * A stream that fails for good (CLOSED: the session is over and the stream answered with the
 * login page, or no room for another stream) reloads the page after a few seconds: it shows
 * the login page, or says why there is no live view. */
(function () {
  "use strict";

  var root = document.getElementById("live");
  if (!root) {
    return;
  }
  var ROWS = 50;
  var RELOAD_AFTER = 4000; // ms from a failed stream to reloading the page
  var POINTS = 300; // five minutes of one-second ticks
  var d = root.dataset;
  var labels = { allow: d.allow, flag: d.flag, block: d.block };
  var rows = document.getElementById("live-rows");
  var empty = document.getElementById("live-empty");
  var lastTick = document.getElementById("live-last-tick");
  var status = document.getElementById("live-status");
  var chartEl = document.getElementById("live-chart");
  var kpi = {
    total: document.getElementById("kpi-total"),
    allow: document.getElementById("kpi-allow"),
    flag: document.getElementById("kpi-flag"),
    block: document.getElementById("kpi-block"),
  };
  var locale = d.lang === "ru" ? "ru-RU" : "en-GB";
  var clock = new Intl.DateTimeFormat(locale, { // the chart only (see above)
    timeZone: "Asia/Almaty", hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23",
  });
  var number = new Intl.NumberFormat(locale);
  var ticks = 0;

  // -- the chart ------------------------------------------------------------------------------

  var css = getComputedStyle(document.documentElement);
  function colour(name, fallback) {
    return (css.getPropertyValue(name) || "").trim() || fallback;
  }
  var data = [[], [], [], []]; // x (epoch s), allowed, flagged, blocked per second
  function series(label, stroke) {
    return { label: label, stroke: stroke, width: 2, value: function (u, v) {
      return v == null ? "—" : number.format(v) + " " + d.perSecond;
    } };
  }
  var plot = new uPlot({
    width: Math.max(chartEl.clientWidth, 300),
    height: 260,
    tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Asia/Almaty"); },
    scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
    series: [
      { label: d.time, value: function (u, v) {
        return v == null ? "—" : clock.format(new Date(v * 1000));
      } },
      series(labels.allow, colour("--allow", "#1d6b34")),
      series(labels.flag, colour("--flag", "#8a5a00")),
      series(labels.block, colour("--block", "#a4161a")),
    ],
    axes: [
      { space: 80, values: function (u, splits) {
        return splits.map(function (v) { return clock.format(new Date(v * 1000)); });
      } },
      { size: 60, values: function (u, splits) { return splits.map(number.format); } },
    ],
  }, data, chartEl);

  var resizing = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      plot.setSize({ width: Math.max(chartEl.clientWidth, 300), height: 260 });
    }, 200);
  });

  function point(t, allow, flag, block) {
    data[0].push(t);
    data[1].push(allow);
    data[2].push(flag);
    data[3].push(block);
    if (data[0].length > POINTS) {
      for (var i = 0; i < 4; i++) {
        data[i].splice(0, data[i].length - POINTS);
      }
    }
  }

  // -- the table ------------------------------------------------------------------------------

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) {
      e.textContent = String(text);
    }
    if (cls) {
      e.className = cls;
    }
    return e;
  }

  function textCell(item) {
    var td = el("td", null, "sms-text");
    if (item.hidden) { // a role without personal data gets no text (R7)
      td.appendChild(el("span", "—"));
      td.appendChild(el("br"));
      td.appendChild(el("small", d.textHidden, "note text-hidden"));
      return td;
    }
    var chars = Array.from(item.text || "");
    var pos = 0;
    (item.spans || []).forEach(function (span) {
      var start = Math.max(span[0], pos);
      var end = Math.min(span[1], chars.length);
      if (end <= start) {
        return;
      }
      if (start > pos) {
        td.appendChild(document.createTextNode(chars.slice(pos, start).join("")));
      }
      td.appendChild(el("mark", chars.slice(start, end).join("")));
      pos = end;
    });
    if (pos < chars.length) {
      td.appendChild(document.createTextNode(chars.slice(pos).join("")));
    }
    if (item.cut) {
      var more = el("span", " …", "note");
      more.title = d.cut;
      td.appendChild(more);
    }
    return td;
  }

  function rulesCell(item) {
    var td = el("td", null, "rules");
    var reasons = item.reasons || [];
    reasons.forEach(function (r, i) {
      if (i > 0) {
        td.appendChild(el("br"));
      }
      var code = el("code", r.rule_id);
      code.title = r.description + " (" + r.detector + ", " + Number(r.score).toFixed(2) + ")";
      td.appendChild(code);
    });
    return td;
  }

  function row(item, t) {
    var at = new Date((item.at || t) * 1000);
    var tr = el("tr", null, "decision-row-" + item.decision);
    var time = el("td");
    var stamp = el("time", item.local || "—");
    stamp.dateTime = at.toISOString();
    stamp.title = item.date || "";
    time.appendChild(stamp);
    tr.appendChild(time);
    var decision = el("td");
    decision.appendChild(el("span", labels[item.decision] || item.decision,
      "decision-" + item.decision));
    tr.appendChild(decision);
    tr.appendChild(el("td", Number(item.score).toFixed(2), "num"));
    var sender = el("td", item.source);
    sender.appendChild(el("br"));
    sender.appendChild(el("small", [item.smsc, item.route].filter(Boolean).join(" · "), "note"));
    tr.appendChild(sender);
    tr.appendChild(el("td", item.dest));
    tr.appendChild(textCell(item));
    tr.appendChild(rulesCell(item));
    return tr;
  }

  function prepend(items, t) {
    if (!items || items.length === 0) {
      return;
    }
    var fragment = document.createDocumentFragment();
    for (var i = items.length - 1; i >= 0; i--) { // newest first
      fragment.appendChild(row(items[i], t));
    }
    rows.insertBefore(fragment, rows.firstChild);
    while (rows.rows.length > ROWS) {
      rows.deleteRow(-1);
    }
    empty.hidden = true;
  }

  // -- the stream -----------------------------------------------------------------------------

  function parse(event) {
    try {
      return JSON.parse(event.data);
    } catch (e) {
      return null;
    }
  }

  var source = new EventSource(d.stream);
  var reloading = false;
  source.addEventListener("open", function () {
    status.textContent = d.statusOpen;
  });
  source.addEventListener("error", function () {
    if (source.readyState !== EventSource.CLOSED) {
      status.textContent = d.statusConnecting; // the browser reconnects by itself
      return;
    }
    status.textContent = d.statusLost;
    if (!reloading) {
      reloading = true;
      setTimeout(function () { window.location.reload(); }, RELOAD_AFTER);
    }
  });
  source.addEventListener("end", function () { // replaced: reconnecting would end the other
    source.close();
    status.textContent = d.statusReplaced;
  });
  source.addEventListener("history", function (event) {
    var h = parse(event);
    if (!h) {
      return;
    }
    data = [[], [], [], []];
    (h.ticks || []).forEach(function (p) { point(p[0], p[1], p[2], p[3]); });
    plot.setData(data);
    while (rows.firstChild) {
      rows.removeChild(rows.firstChild);
    }
    empty.hidden = false;
    prepend(h.items, h.t);
  });
  source.addEventListener("tick", function (event) {
    var tick = parse(event);
    if (!tick) {
      return;
    }
    var c = tick.counts;
    point(tick.t, c.allow, c.flag, c.block);
    plot.setData(data);
    kpi.total.textContent = number.format(c.allow + c.flag + c.block);
    kpi.allow.textContent = number.format(c.allow);
    kpi.flag.textContent = number.format(c.flag);
    kpi.block.textContent = number.format(c.block);
    prepend(tick.items, tick.t);
    ticks += 1;
    var at = new Date(tick.t * 1000);
    lastTick.textContent = tick.local || "—";
    lastTick.dateTime = at.toISOString();
    lastTick.dataset.ticks = String(ticks);
  });
})();
