/* The department and supervisor workbenches: keyboard shortcuts, charts, the notice dialog.
   Every page works without it; this only makes the keyboard and the charts nicer. */
(function () {
  "use strict";

  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  /* Shortcuts: digits follow [data-hotkey] links (tabs); J/K move through the table rows,
     Enter opens the selected ticket, S signs it (where a 签收 button is in the row). */
  var rows = [];
  var current = -1;
  function select(i) {
    if (!rows.length) return;
    if (current >= 0 && rows[current]) rows[current].classList.remove("kb-focus");
    current = Math.max(0, Math.min(rows.length - 1, i));
    var row = rows[current];
    row.classList.add("kb-focus");
    var link = row.querySelector("a.ticket-link");
    if (link) link.focus({ preventScroll: false });
  }
  document.addEventListener("DOMContentLoaded", function () {
    rows = Array.prototype.slice.call(document.querySelectorAll("table.wb-table tbody tr[data-ticket]"));
  });
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || typing(e)) return;
    var hot = document.querySelector('[data-hotkey="' + e.key + '"]');
    if (hot) { e.preventDefault(); hot.click(); return; }
    var key = e.key.toLowerCase();
    if (key === "j") { e.preventDefault(); select(current + 1); }
    else if (key === "k") { e.preventDefault(); select(current - 1); }
    else if (key === "s" && current >= 0) {
      var sign = rows[current].querySelector("form[action$='/sign'] button");
      if (sign) { e.preventDefault(); sign.click(); }
    }
  });

  /* Selects marked data-autosubmit submit their form when changed. */
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-autosubmit]")) e.target.form.submit();
  });

  /* Urge / supervise: ask for an optional message in a dialog before posting. */
  document.addEventListener("DOMContentLoaded", function () {
    var dialog = document.getElementById("notice-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return;
    var pending = null;
    var words = { urge: ["催办", "向承办单位承办人发出催办通知"], supervise: ["督办", "向承办单位负责人下发督办单"] };
    document.addEventListener("click", function (e) {
      var button = e.target.closest && e.target.closest("button[data-notice]");
      if (!button) return;
      e.preventDefault();
      pending = button.form;
      var w = words[button.dataset.notice];
      document.getElementById("notice-dialog-title").textContent = w[0] + "工单 " + button.dataset.number;
      document.getElementById("notice-dialog-ticket").textContent = w[1] + "：" + button.dataset.title;
      document.getElementById("notice-send").textContent = "发送" + w[0];
      document.getElementById("notice-message").value = "";
      dialog.showModal();
      document.getElementById("notice-message").focus();
    });
    dialog.addEventListener("close", function () {
      if (dialog.returnValue !== "send" || !pending) { pending = null; return; }
      var text = document.getElementById("notice-message").value.trim();
      if (text) {
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "message"; input.value = text;
        pending.appendChild(input);
      }
      pending.submit();
    });
  });

  /* Charts (Apache ECharts, vendored). */
  function trendOption(d) {
    var axis = { color: "#5f6b7a", fontSize: 11 };
    return {
      color: ["#e0a32e", "#c62828", "#6a3fa0"],
      grid: { left: 36, right: 14, top: 30, bottom: 24 },
      tooltip: { trigger: "axis" },
      legend: { top: 0, right: 0, itemWidth: 14, itemHeight: 8, textStyle: { color: "#5f6b7a", fontSize: 12 } },
      xAxis: { type: "category", data: d.days, boundaryGap: false, axisLabel: axis,
               axisLine: { lineStyle: { color: "#c5ced9" } }, axisTick: { show: false } },
      yAxis: { type: "value", minInterval: 1, axisLabel: axis, splitLine: { lineStyle: { color: "#eef1f5" } } },
      series: [
        { name: "新增预警", type: "line", data: d.warn, smooth: 0.25, symbolSize: 5, areaStyle: { opacity: 0.08 } },
        { name: "新增超期（催办）", type: "line", data: d.urge, smooth: 0.25, symbolSize: 5, areaStyle: { opacity: 0.1 } },
        { name: "督办", type: "bar", data: d.supervise, barMaxWidth: 8, itemStyle: { opacity: 0.75 } }
      ]
    };
  }
  window.addEventListener("load", function () {
    if (!window.echarts) return;
    var el = document.getElementById("trend-chart");
    var data = document.getElementById("trend-data");
    if (!el || !data) return;
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption(trendOption(JSON.parse(data.textContent)));
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
