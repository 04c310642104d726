/* The book's small page helpers (picked up from _static/ by Jupyter Book; see _config.yml).
   1. Wide tables (four or more columns) get a data-label per cell so that book.css can reflow them
      into one card per row on a phone.
   2. Boxes wider than their column (display math, tables) get a class and a short hint so a
      reader knows they scroll sideways; checked again after MathJax has typeset and on resize.
   3. Search result snippets are cut from the pages' HTML before MathJax has run, so they hold
      raw TeX such as \(\beta\); the snippets are rewritten as plain text (β).
   4. The widget manager (html-manager 1.x, on the explorer pages) typesets labels with MathJax 2's
      MathJax.Hub.Queue whenever window.MathJax exists; the book loads MathJax 3, which has no Hub.
      A small MathJax.Hub.Queue that asks MathJax 3 to typeset the element avoids the TypeError. */
(function () {
  "use strict";

  function hubShim(mj) {
    if (!mj || mj.Hub) return;
    mj.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (cmd) {
          var el = Array.isArray(cmd) ? cmd[2] : null;
          var now = window.MathJax;
          if (el && now && now.typesetPromise) now.typesetPromise([el]).catch(function () {});
        });
      },
    };
  }
  hubShim(window.MathJax);  // the configuration object, before MathJax 3 has started

  function labelTables() {
    document.querySelectorAll(".bd-article table").forEach(function (table) {
      var head = table.querySelector("thead tr");
      // prose tables only: a table of numbers printed by a cell reads better scrolled than as cards
      if (!head || table.classList.contains("dl-reflow") || table.closest(".cell_output")) return;
      var labels = Array.prototype.map.call(head.children, function (th) {
        return th.textContent.trim();
      });
      var box = table.parentElement;
      var tooWide = box && table.offsetWidth > box.clientWidth + 1;
      if (labels.length < 3 || (labels.length === 3 && !tooWide)) return;
      table.classList.add("dl-reflow");
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        Array.prototype.forEach.call(tr.children, function (td, i) {
          if (labels[i]) td.setAttribute("data-label", labels[i]);
          var text = td.textContent.trim();
          if (text === "---" || text === "\u2014" || text === "") td.classList.add("dl-empty");
        });
      });
    });
  }

  var BOXES = [
    "div.math mjx-container[display='true']",
    ".pst-scrollable-table-container",
    ".bd-article .table-wrapper",
    ".cell_output .output.text_html",
  ].join(",");

  function markOverflow() {
    // inline formulas: the theme clips a span.math wider than the line; let it scroll instead
    document.querySelectorAll("span.math").forEach(function (span) {
      var overflows = span.scrollWidth > span.clientWidth + 1;
      span.classList.toggle("dl-overflows", overflows);
      span.classList.toggle("dl-scroll-cue", overflows);
    });
    document.querySelectorAll(BOXES).forEach(function (box) {
      var overflows = box.scrollWidth > box.clientWidth + 1;
      box.classList.toggle("dl-overflows", overflows);
      box.classList.toggle("dl-scroll-cue", overflows);
      var math = box.closest("div.math");  // a flex row: the hint goes below it
      var anchor = math || box;
      var where = math ? "afterend" : "beforebegin";  // tables can be long: hint above them
      var hint = math ? anchor.nextElementSibling : anchor.previousElementSibling;
      var hasHint = hint && hint.classList.contains("dl-overflow-hint");
      if (overflows && !hasHint) {
        hint = document.createElement("span");
        hint.className = "dl-overflow-hint";
        hint.setAttribute("aria-hidden", "true");
        hint.textContent = "scroll sideways \u2194";
        anchor.insertAdjacentElement(where, hint);
      } else if (!overflows && hasHint) {
        hint.remove();
      }
    });
  }

  var pending = null;
  function markSoon() {
    if (pending) window.clearTimeout(pending);
    pending = window.setTimeout(function () { labelTables(); markOverflow(); }, 150);
  }

  var SYMBOLS = {
    alpha: "\u03b1", beta: "\u03b2", gamma: "\u03b3", delta: "\u03b4", epsilon: "\u03b5",
    varepsilon: "\u03b5", zeta: "\u03b6", eta: "\u03b7", theta: "\u03b8", kappa: "\u03ba",
    lambda: "\u03bb", mu: "\u03bc", nu: "\u03bd", xi: "\u03be", pi: "\u03c0", rho: "\u03c1",
    sigma: "\u03c3", tau: "\u03c4", phi: "\u03c6", varphi: "\u03c6", chi: "\u03c7",
    psi: "\u03c8", omega: "\u03c9", Gamma: "\u0393", Delta: "\u0394", Theta: "\u0398",
    Lambda: "\u039b", Sigma: "\u03a3", Phi: "\u03a6", Psi: "\u03a8", Omega: "\u03a9",
    nabla: "\u2207", partial: "\u2202", infty: "\u221e", le: "\u2264", leq: "\u2264",
    ge: "\u2265", geq: "\u2265", ne: "\u2260", neq: "\u2260", approx: "\u2248",
    sim: "\u223c", cdot: "\u00b7", times: "\u00d7", to: "\u2192", rightarrow: "\u2192",
    in: "\u2208", sum: "\u2211", prod: "\u220f", sqrt: "\u221a", star: "\u22c6",
    top: "\u22a4", R: "\u211d", E: "E", ell: "\u2113", lVert: "\u2016", rVert: "\u2016",
    Vert: "\u2016", lvert: "|", rvert: "|", langle: "\u27e8", rangle: "\u27e9", odot: "\u2299",
    succeq: "\u2ab0", preceq: "\u2aaf", log: "log", exp: "exp", min: "min", max: "max"
  };

  /* TeX to readable plain text: enough for a search snippet, not a renderer. */
  function detex(tex) {
    return tex
      .replace(/\\(?:mathbb|mathrm|mathbf|mathcal|operatorname|text|textrm|boldsymbol)\s*\{([^{}]*)\}/g,
               function (m, arg) { return arg === "R" ? "\u211d" : arg; })
      .replace(/\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)")
      .replace(/\\([A-Za-z]+)/g, function (m, name) {
        return Object.prototype.hasOwnProperty.call(SYMBOLS, name) ? SYMBOLS[name] : "";
      })
      .replace(/\\[,;:! ]/g, " ")
      .replace(/[{}]/g, "")
      .replace(/\s+/g, " ")
      .trim();
  }

  function plainMath(text) {
    var detexed = function (m, tex) { return detex(tex); };
    return text
      .replace(/\\\(([\s\S]*?)\\\)/g, detexed)
      .replace(/\\\[([\s\S]*?)\\\]/g, detexed)
      .replace(/\$\$([\s\S]*?)\$\$/g, detexed)
      // a snippet can cut a formula in two: an opening or closing delimiter without its partner
      .replace(/\\[(\[]([\s\S]*)$/, detexed)
      .replace(/^([\s\S]*?)\\[)\]]/, detexed);
  }

  function cleanSnippets(root) {
    root.querySelectorAll("p.context:not([data-dl-plain])").forEach(function (p) {
      p.setAttribute("data-dl-plain", "");  // once per snippet (the observer sees our own edits)
      if (!/\\[()\[\]]|\$\$/.test(p.textContent)) return;
      // keep the highlighted search words where the formulas lie within single text nodes
      var walker = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
      var nodes = [];
      while (walker.nextNode()) nodes.push(walker.currentNode);
      nodes.forEach(function (n) { n.nodeValue = plainMath(n.nodeValue); });
      if (/\\[()\[\]]/.test(p.textContent)) p.textContent = plainMath(p.textContent);
    });
  }

  function watchSearchResults() {
    var results = document.getElementById("search-results");
    if (!results || !window.MutationObserver) return;
    cleanSnippets(results);
    new MutationObserver(function () { cleanSnippets(results); })
      .observe(results, { childList: true, subtree: true });
  }


  function init() {
    watchSearchResults();
    labelTables();
    markOverflow();
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(function () { hubShim(window.MathJax); markOverflow(); });
    } else {
      window.addEventListener("load", markOverflow);
    }
    window.addEventListener("resize", markSoon);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
