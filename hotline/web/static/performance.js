/* Charts of the performance board, the analysis page and the reports (ECharts, SVG renderer).
   Each chart element names its kind (data-chart) and its data (data-key in #pf-chart-data). */
(function () {
  "use strict";
  var BLUE = "#1d4f91", RED = "#b71c1c", BLACK = "#2b2f36", OTHER = "#5b8fd3";
  var PALETTE = ["#1d4f91", "#3f86d6", "#2e9d8f", "#e0a32e", "#c6492b", "#6a3fa0", "#8a94a3", "#d4691b", "#4caf7d", "#9c6b4e"];
  var AXIS = { color: "#5f6b7a", fontSize: 11 };
  var SPLIT = { lineStyle: { color: "#eef1f5" } };
  var LINE = { lineStyle: { color: "#c5ced9" } };
  var charts = [];

  function short(text, n) {
    return text && text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  var builders = {
    scores: function (d) {
      var items = d.items.slice().reverse(); // highest on top
      var red = d.red || [], black = d.black || [];
      return {
        grid: { left: 8, right: 46, top: 6, bottom: 20, containLabel: true },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                   valueFormatter: function (v) { return v == null ? "—" : v.toFixed(2); } },
        xAxis: { type: "value", max: 100, axisLabel: AXIS, splitLine: SPLIT },
        yAxis: { type: "category", data: items.map(function (r) { return r.name; }),
                 axisLabel: { color: "#1f2933", fontSize: 12, formatter: function (v) { return short(v, 14); } },
                 axisTick: { show: false }, axisLine: LINE },
        series: [{
          type: "bar", name: "综合得分", barMaxWidth: 16,
          data: items.map(function (r) {
            var color = r.own ? "#e0a32e" : red.indexOf(r.name) >= 0 ? RED : black.indexOf(r.name) >= 0 ? BLACK : OTHER;
            return { value: r.score, itemStyle: { color: color, borderRadius: [0, 3, 3, 0] } };
          }),
          label: { show: true, position: "right", color: "#1f2933", fontSize: 11,
                   formatter: function (p) { return p.value == null ? "" : p.value.toFixed(2); } }
        }]
      };
    },
    line: function (d) {
      return {
        color: [BLUE],
        grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: d.labels, boundaryGap: false, axisLabel: AXIS, axisLine: LINE, axisTick: { show: false } },
        yAxis: { type: "value", minInterval: 1, axisLabel: AXIS, splitLine: SPLIT },
        series: [{ type: "line", name: "受理量", data: d.values, smooth: true, symbolSize: 5,
                   areaStyle: { opacity: 0.12 }, lineStyle: { width: 2 } }]
      };
    },
    pie: function (d) {
      var total = d.items.reduce(function (sum, r) { return sum + r.value; }, 0) || 1;
      var byName = {};
      d.items.forEach(function (r) { byName[r.name] = r.value; });
      return {
        color: PALETTE,
        tooltip: { trigger: "item", formatter: "{b}：{c} 件（{d}%）" },
        legend: {
          orient: "vertical", right: 8, top: "middle", itemWidth: 10, itemHeight: 10, itemGap: 9,
          textStyle: { color: "#1f2933", fontSize: 12 },
          formatter: function (name) {
            var v = byName[name] || 0;
            return name + "  " + v.toLocaleString("zh-CN") + " 件  " + (100 * v / total).toFixed(1) + "%";
          }
        },
        series: [{
          type: "pie", name: "诉求类型", radius: ["45%", "75%"], center: ["32%", "52%"],
          itemStyle: { borderColor: "#fff", borderWidth: 2 },
          label: { show: true, position: "inside", formatter: function (p) { return p.percent >= 6 ? p.name : ""; },
                   color: "#fff", fontSize: 11 },
          labelLine: { show: false },
          data: d.items
        }]
      };
    },
    hbar: function (d) {
      var labels = d.labels.slice().reverse(), values = d.values.slice().reverse();
      return {
        color: [OTHER],
        grid: { left: 8, right: 40, top: 6, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        xAxis: { type: "value", minInterval: 1, axisLabel: AXIS, splitLine: SPLIT },
        yAxis: { type: "category", data: labels, axisTick: { show: false }, axisLine: LINE,
                 axisLabel: { color: "#1f2933", fontSize: 12, formatter: function (v) { return short(v, 12); } } },
        series: [{ type: "bar", name: "受理量", data: values, barMaxWidth: 20, barCategoryGap: "35%",
                   itemStyle: { borderRadius: [0, 3, 3, 0] },
                   label: { show: true, position: "right", fontSize: 11, color: "#1f2933" } }]
      };
    },
    bar: function (d) {
      return {
        color: ["#3f86d6"],
        grid: { left: 8, right: 10, top: 16, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        xAxis: { type: "category", data: d.labels, axisLabel: { color: "#5f6b7a", fontSize: 10, interval: 1 },
                 axisLine: LINE, axisTick: { show: false } },
        yAxis: { type: "value", minInterval: 1, axisLabel: AXIS, splitLine: SPLIT },
        series: [{ type: "bar", name: "受理量", data: d.values, barMaxWidth: 18, itemStyle: { borderRadius: [3, 3, 0, 0] } }]
      };
    }
  };

  function isEmpty(d) {
    if (d.items) return !d.items.length;
    return !d.values || !d.values.some(function (v) { return v; });
  }

  function init() {
    var src = document.getElementById("pf-chart-data");
    if (!src) return;
    var data = JSON.parse(src.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var d = data[el.getAttribute("data-key")];
      var build = builders[el.getAttribute("data-chart")];
      if (!d || !build) return;
      if (isEmpty(d)) {
        el.classList.add("pf-chart-empty");
        el.textContent = "本期无数据";
        return;
      }
      if (!window.echarts) return;
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      var option = build(d);
      option.animation = false;
      option.textStyle = { fontFamily: "inherit" };
      chart.setOption(option);
      charts.push(chart);
    });
  }

  function resizeAll() {
    charts.forEach(function (c) { c.resize(); });
  }

  window.addEventListener("resize", resizeAll);
  window.addEventListener("beforeprint", resizeAll);
  window.addEventListener("afterprint", resizeAll);
  if (window.matchMedia) {
    var mq = window.matchMedia("print");
    if (mq.addEventListener) mq.addEventListener("change", resizeAll);
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-print]");
    if (button) window.print();
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
