/* dlopt explorers: draw precomputed trajectories with Plotly; no update rule lives here.
 *
 * Each explorer is a <div class="dlopt-explorer"> holding its spec as JSON in a
 * <script type="application/json">: controls (grid values), panels, traces and, for every grid
 * point, the arrays dlopt.run produced at build time. Moving a control only selects the arrays of
 * another grid point and hands them to Plotly.react. Written by dlopt.book.explorers.
 */
(function () {
  "use strict";
  if (window.dloptExplorers) { window.dloptExplorers.soon(); return; }

  var NARROW = 620;  // px: below this width the panels are stacked

  function column(x, n) {  // a stride s stands for 0, s, 2s, ...; {o, s} for o, o+s, ...
    var o = 0, s = x;
    if (x !== null && typeof x === "object" && !Array.isArray(x)) { o = x.o; s = x.s; }
    else if (typeof x !== "number") return x;
    var out = new Array(n);
    for (var i = 0; i < n; i++) out[i] = o + i * s;
    return out;
  }

  function axisName(kind, p) { return kind + (p === 0 ? "" : String(p + 1)); }

  function setup(root) {
    if (root.getAttribute("data-ready")) return;
    root.setAttribute("data-ready", "1");
    var spec = JSON.parse(root.querySelector("script[type='application/json']").textContent);
    var plot = root.querySelector(".dlopt-explorer-plot");
    var text = root.querySelector(".dlopt-explorer-text");
    if (!window.Plotly) {
      text.textContent = "The interactive figure needs the book's JavaScript (open the HTML book, " +
        "or call .widget() on the explorer in Jupyter).";
      root.setAttribute("data-error", "no-plotly");
      return;
    }
    var inputs = spec.controls.map(function (c) {
      return root.querySelector("[data-control='" + c.name + "']");
    });
    var outputs = spec.controls.map(function (c) {
      return root.querySelector("[data-readout='" + c.name + "']");
    });

    function index() {
      var i = 0;
      for (var j = 0; j < inputs.length; j++) i = i * spec.controls[j].values.length + Number(inputs[j].value);
      return i;
    }

    // A map (type "image": a PNG over the cells' extent, a layout image) gets its colour bar from
    // an invisible marker trace with the same colour scale.
    function backgrounds() {
      var out = [];
      spec.panels.forEach(function (p, k) {
        var b = p.background;
        if (!b || b.type !== "image" || !b.colorbar) return;
        out.push({type: "scatter", mode: "markers", x: [b.x0], y: [b.y0], xaxis: axisName("x", k),
                  yaxis: axisName("y", k), hoverinfo: "skip", showlegend: false, name: "",
                  marker: {color: [b.zmin], cmin: b.zmin, cmax: b.zmax, colorscale: "Viridis", opacity: 0,
                           showscale: true, colorbar: {title: {text: b.colorbar}, thickness: 12}}});
      });
      return out;
    }

    function images() {
      var out = [];
      spec.panels.forEach(function (p, k) {
        var b = p.background;
        if (!b || b.type !== "image") return;
        out.push({source: b.src, xref: axisName("x", k), yref: axisName("y", k), x: b.x0, y: b.y1,
                  sizex: b.x1 - b.x0, sizey: b.y1 - b.y0, sizing: "stretch", layer: "below"});
      });
      return out;
    }

    // Level sets: precomputed polylines turned once into an SVG path, drawn as a layout shape in
    // data coordinates, so that a redraw of the traces does not process them again.
    function svgPath(b) {
      if (b.path) return b.path;
      var parts = [], pen = "M";
      for (var j = 0; j < b.x.length; j++) {
        if (b.x[j] === null || b.y[j] === null) { pen = "M"; continue; }
        parts.push(pen + b.x[j] + "," + b.y[j]);
        pen = "L";
      }
      b.path = parts.join("");
      return b.path;
    }

    function levelShapes() {
      var out = [];
      spec.panels.forEach(function (p, k) {
        var b = p.background;
        if (!b) return;
        if (b.list) b = b.list[Number(inputs[b.by].value)];
        if (b.type !== "contour") return;
        out.push({type: "path", path: svgPath(b), xref: axisName("x", k), yref: axisName("y", k),
                  layer: "below", line: {color: "#8fa8bf", width: 0.8}});
      });
      return out;
    }

    function traces(i, lay) {
      var out = backgrounds();
      out.forEach(function (t) {  // a colour bar sits beside its own panel
        if (!t.marker || !t.marker.colorbar) return;
        t = t.marker;
        var k = 0;  // the map is in the first panel that has one
        spec.panels.some(function (p, j) { k = j; return p.background && p.background.type === "image"; });
        var xd = lay[axisName("xaxis", k)].domain, yd = lay[axisName("yaxis", k)].domain;
        t.colorbar.x = xd[1] + 0.015;
        t.colorbar.xanchor = "left";
        t.colorbar.y = (yd[0] + yd[1]) / 2;
        t.colorbar.len = yd[1] - yd[0];
      });
      spec.traces.forEach(function (t) {
        var d = spec.data[t.name][i];
        var y = d ? d[1] : [];
        var x = d ? column(d[0], y.length) : [];
        var tr = {type: "scatter", mode: t.mode, x: x, y: y, name: t.label, meta: t.name,
                  xaxis: axisName("x", t.panel), yaxis: axisName("y", t.panel),
                  line: {color: t.color, width: t.width, dash: t.dash || "solid"},
                  marker: {color: t.color, size: t.size, symbol: t.symbol || "circle"},
                  showlegend: t.legend, legendgroup: t.label};
        out.push(tr);
      });
      return out;
    }

    function layout(width) {
      var n = spec.panels.length, narrow = width < NARROW;
      var titled = spec.panels.some(function (p) { return p.title; });
      var top = titled ? 58 : 36, bottom = 44;
      // Narrow screens: panels stacked, each as tall as it needs (a square panel of a wide window
      // gets the height its aspect ratio asks for), with room for the x-axis title in between.
      var GAP = 78, heights = spec.panels.map(function (p) {
        if (!narrow || !p.square || !p.xrange || !p.yrange) return spec.panel_height;
        var ratio = (p.yrange[1] - p.yrange[0]) / (p.xrange[1] - p.xrange[0]);
        return Math.max(150, Math.min(spec.panel_height, (width - 90) * ratio));
      });
      var H = narrow ? heights.reduce(function (a, b) { return a + b; }, 0) + GAP * (n - 1) : spec.panel_height;
      var lay = {height: H + top + bottom, margin: {l: 56, r: 14, t: top, b: bottom}, showlegend: true,
                 legend: {orientation: "h", x: 0, y: 1, yref: "container", yanchor: "top"},
                 font: {size: 13}, hovermode: "closest", uirevision: "keep", annotations: []};
      var gap = 0.1;
      spec.panels.forEach(function (p, k) {
        var xa = {title: {text: p.xlabel, standoff: 4}, type: p.xlog ? "log" : "linear",
                  zeroline: false, automargin: true};
        var ya = {title: {text: p.ylabel, standoff: 4}, type: p.ylog ? "log" : "linear",
                  zeroline: false, automargin: true};
        [[xa, p.xlog, p.xrange], [ya, p.ylog, p.yrange]].forEach(function (a) {
          if (!a[1]) return;
          a[0].exponentformat = "power";
          if (a[2] && Math.log10(a[2][1] / a[2][0]) <= 6) a[0].dtick = 1;  // a label per decade
        });
        if (p.xrange) { xa.range = p.xlog ? p.xrange.map(Math.log10) : p.xrange; xa.autorange = false; }
        if (p.yrange) { ya.range = p.ylog ? p.yrange.map(Math.log10) : p.yrange; ya.autorange = false; }
        if (narrow) {
          var above = 0;
          for (var j = 0; j < k; j++) above += heights[j] + GAP;
          xa.domain = [0, p.background && p.background.type === "image" ? 0.86 : 1];
          ya.domain = [1 - (above + heights[k]) / H, 1 - above / H];
        } else {
          var w = (1 - gap * (n - 1)) / n;
          if (spec.panels.some(function (q) { return q.background && q.background.type === "image"; })) gap = 0.16;
          w = (1 - gap * (n - 1)) / n;
          xa.domain = [k * (w + gap), k * (w + gap) + w];
          ya.domain = [0, 1];
        }
        xa.anchor = axisName("y", k);
        ya.anchor = axisName("x", k);
        if (p.background && p.background.type === "image") { xa.showgrid = false; ya.showgrid = false; }
        if (p.square) { ya.scaleanchor = axisName("x", k); ya.scaleratio = 1; ya.constrain = "domain"; xa.constrain = "domain"; }
        lay[axisName("xaxis", k)] = xa;
        lay[axisName("yaxis", k)] = ya;
        if (p.title) {
          lay.annotations.push({text: p.title, xref: axisName("x", k) + " domain", yref: axisName("y", k) + " domain",
                                x: 0, y: 1.02, xanchor: "left", yanchor: "bottom", showarrow: false,
                                font: {size: 13}});
        }
      });
      lay.shapes = levelShapes();
      lay.images = images();
      return lay;
    }

    var config = {displayModeBar: false, responsive: true, staticPlot: false, scrollZoom: false};
    var lastNarrow = null;

    function readouts() {
      spec.controls.forEach(function (c, j) {
        var v = c.labels[Number(inputs[j].value)];
        var s = c.symbol + " = " + v;
        if (outputs[j]) outputs[j].textContent = s;
        if (inputs[j].tagName === "INPUT") inputs[j].setAttribute("aria-valuetext", s);
      });
    }

    function draw(first) {
      var t0 = performance.now();
      var i = index();
      readouts();
      var width = plot.clientWidth || root.clientWidth || 700;
      lastNarrow = width < NARROW;
      var lay = layout(width);
      var done = window.Plotly.react(plot, traces(i, lay), lay, config);
      text.textContent = spec.text ? spec.text[i] : "";
      root.setAttribute("data-index", String(i));
      return Promise.resolve(done).then(function () {
        var ms = performance.now() - t0;
        if (first) root.setAttribute("data-first-paint-ms", String(performance.now()));
        else root.setAttribute("data-redraw-ms", ms.toFixed(2));
        root.setAttribute("data-drawn", String(i));
        root.setAttribute("data-draws", String(Number(root.getAttribute("data-draws") || 0) + 1));
      });
    }

    inputs.forEach(function (inp) {
      inp.addEventListener("input", function () { draw(false); });
      inp.addEventListener("change", function () { draw(false); });
    });
    window.addEventListener("resize", function () {
      var narrow = (plot.clientWidth || 700) < NARROW;
      if (narrow !== lastNarrow) draw(false);
    });
    root.dloptDraw = draw;
    draw(true);
  }

  function scan() {
    var all = document.querySelectorAll(".dlopt-explorer");
    for (var i = 0; i < all.length; i++) setup(all[i]);
  }

  // While the page is still loading (Plotly is loaded with defer), wait for DOMContentLoaded;
  // explorers inserted later (a notebook output) are set up at once.
  function soon() {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
    else scan();
  }

  window.dloptExplorers = {scan: scan, soon: soon};
  soon();
})();
