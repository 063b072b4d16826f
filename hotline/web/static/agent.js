// The agent workbench: a keyboard-first intake form.
//   Enter        next field (the form is never sent by a stray Enter)
//   ↑ ↓ Enter    pick a category from the suggestions; Esc closes them
//   Alt+1 / 2    handling mode: 派单 / 直接办结
//   Ctrl+Enter   submit with the chosen handling mode
//   Alt+K        the knowledge suggestions: ↑ ↓ move between them, Enter opens one
(function () {
  "use strict";
  const form = document.getElementById("intake-form");
  if (!form) return;
  const query = document.getElementById("category_q");
  const code = document.getElementById("category");
  const pop = document.getElementById("category-suggest");

  function fields() {
    return Array.from(form.elements).filter(function (el) {
      if (el.disabled || el.type === "hidden" || el.tagName === "BUTTON" || el.name === "mode") return false;
      // Switches (保密, 匿名, 需要答复) are off the Enter path: Tab or a click reaches them,
      // and a space typed by the input method cannot flip one by accident.
      if (el.type === "checkbox") return false;
      if (el.type === "radio" && !el.checked) return false;
      return el.offsetParent !== null || el.type === "radio";
    });
  }

  function focusNext(el) {
    // The next field on the Enter path after `el`, wherever `el` itself is (a switch too).
    const next = fields().find(function (f) {
      return el.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING;
    });
    if (next) next.focus();
  }

  // Enter pressed before the suggestions for what was typed arrived: pick when they do.
  let pickWhenFresh = false;

  function options() { return Array.from(pop.querySelectorAll(".suggest-item")); }

  function fresh() {
    const list = pop.querySelector(".suggest-list");
    return !!list && list.dataset.q === query.value.trim().toLowerCase();
  }

  function openPop() { pop.hidden = false; query.setAttribute("aria-expanded", "true"); }

  function closePop() { pop.hidden = true; query.setAttribute("aria-expanded", "false"); }

  function highlight(step) {
    const items = options();
    if (!items.length) return;
    let i = items.findIndex(function (b) { return b.classList.contains("active"); });
    items.forEach(function (b) { b.classList.remove("active"); });
    i = i < 0 ? 0 : (i + step + items.length) % items.length;
    items[i].classList.add("active");
    items[i].scrollIntoView({ block: "nearest" });
  }

  function pick(item) {
    code.value = item.dataset.code;
    query.value = item.dataset.label;
    query.removeAttribute("aria-invalid");
    closePop();
    document.body.dispatchEvent(new CustomEvent("category-picked"));
    focusNext(query);
  }

  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target !== pop) return;
    if (pickWhenFresh && fresh()) {
      pickWhenFresh = false;
      const first = pop.querySelector(".suggest-item.active");
      if (first) pick(first);
      return;
    }
    if (document.activeElement === query) openPop();
  });

  query.addEventListener("input", function () {
    pickWhenFresh = false;
    if (code.value) {
      code.value = "";
      document.body.dispatchEvent(new CustomEvent("category-picked"));
    }
  });
  query.addEventListener("focus", function () { query.select(); });
  query.addEventListener("blur", function () { setTimeout(closePop, 150); });
  pop.addEventListener("mousedown", function (e) { e.preventDefault(); });
  pop.addEventListener("click", function (e) {
    const item = e.target.closest(".suggest-item");
    if (item) pick(item);
  });
  query.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (pop.hidden && options().length) { openPop(); return; }
      highlight(e.key === "ArrowDown" ? 1 : -1);
    } else if (e.key === "Enter" && !e.ctrlKey) {
      e.preventDefault();
      e.stopPropagation();
      if (code.value) { focusNext(query); return; }
      if (!fresh()) { pickWhenFresh = true; return; }
      const active = pop.querySelector(".suggest-item.active");
      if (active) pick(active); else focusNext(query);
    } else if (e.key === "Escape") {
      closePop();
    }
  });

  function submitMode() {
    const checked = form.querySelector("input[name=mode]:checked");
    const button = document.getElementById(checked && checked.value === "answer" ? "go-answer" : "go-dispatch");
    if (button) form.requestSubmit(button);
  }

  function chooseMode(value) {
    const radio = document.getElementById("mode-" + value);
    if (!radio) return;
    radio.checked = true;
    const first = form.querySelector(".panel-" + value + " select, .panel-" + value + " textarea");
    if (first) first.focus();
  }

  form.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" || e.defaultPrevented) return;
    if (e.ctrlKey || e.metaKey) {
      e.preventDefault();
      submitMode();
      return;
    }
    const el = e.target;
    if (el.tagName === "TEXTAREA" || el.tagName === "BUTTON") return;
    e.preventDefault();
    focusNext(el);
  });

  document.addEventListener("keydown", function (e) {
    if (!e.altKey || e.ctrlKey) return;
    if (e.key === "1") { e.preventDefault(); chooseMode("dispatch"); }
    if (e.key === "2") { e.preventDefault(); chooseMode("answer"); }
    if (e.code === "KeyK" || e.key === "k" || e.key === "K") { e.preventDefault(); focusSuggestions(); }
  });

  // --- the knowledge suggestions beside the form ---
  const kb = document.getElementById("kb-suggest");
  const article = document.getElementById("article");
  const answer = document.getElementById("answer");
  const cited = document.getElementById("kb-cited");
  const citedLink = document.getElementById("kb-cited-link");

  function summaries() { return Array.from(kb.querySelectorAll(".kb-sum")); }

  function focusSuggestions() {
    const first = summaries()[0];
    if (first) { first.focus(); return; }
    const heading = document.getElementById("kb-heading");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }

  function cite(button) {
    if (!article || !answer) return;
    article.value = button.dataset.article;
    citedLink.textContent = button.dataset.title;
    citedLink.href = "/knowledge/" + button.dataset.article;
    cited.hidden = false;
    // The extract is a start: the agent edits it into what was said to the caller.
    answer.value = button.dataset.extract;
    answer.removeAttribute("aria-invalid");
    chooseMode("answer");
    answer.focus();
    answer.setSelectionRange(answer.value.length, answer.value.length);
  }

  if (kb) {
    // An opened suggestion reads its full text once. Listened for on the list (`toggle` does
    // not bubble: caught on its way down), not by htmx on each item: a list swapped in a
    // moment before the agent opens an item is not processed by htmx yet, and its item would
    // stay at 正在读取全文… for good.
    kb.addEventListener("toggle", function (e) {
      const det = e.target;
      if (!det.classList || !det.classList.contains("kb-det") || !det.open || det.dataset.loaded) return;
      det.dataset.loaded = "1";
      htmx.ajax("GET", det.dataset.body, { target: det.querySelector(".kb-body"), swap: "innerHTML" })
        .catch(function () { delete det.dataset.loaded; });
    }, true);
    // A newer search replaces the list while the agent may be reading an opened suggestion:
    // one still in the new list is opened again there (and reads its text again).
    let reading = [];
    kb.addEventListener("htmx:beforeSwap", function (e) {
      if (e.target !== kb) return;
      reading = Array.from(kb.querySelectorAll(".kb-det[open]")).map(function (d) { return d.dataset.body; });
    });
    kb.addEventListener("htmx:afterSwap", function (e) {
      if (e.target !== kb) return;
      kb.querySelectorAll(".kb-det").forEach(function (d) {
        if (reading.indexOf(d.dataset.body) !== -1) d.open = true;
      });
      reading = [];
    });
    kb.addEventListener("click", function (e) {
      const use = e.target.closest(".kb-use");
      if (use) cite(use);
    });
    kb.addEventListener("keydown", function (e) {
      if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
      const item = e.target.closest(".kb-item");
      if (!item) return;
      e.preventDefault();
      const all = summaries();
      const i = all.indexOf(item.querySelector(".kb-sum"));
      const next = all[(i + (e.key === "ArrowDown" ? 1 : -1) + all.length) % all.length];
      if (next) { next.focus(); next.scrollIntoView({ block: "nearest" }); }
    });
    const content = document.getElementById("content");
    const title = document.getElementById("title");
    if ((content && content.value.trim()) || (title && title.value.trim())) {
      // The form came back with what was typed: suggest for it again.
      window.addEventListener("load", function () { htmx.trigger(kb, "kb-refresh"); });
    }
  }
  const uncite = document.getElementById("kb-uncite");
  if (uncite) {
    uncite.addEventListener("click", function () {
      article.value = "";
      cited.hidden = true;
      answer.focus();
    });
  }

  // A chosen street makes the community list follow it; the old community is gone.
  const street = document.getElementById("street");
  const community = document.getElementById("community");
  if (street && community && community.tagName === "SELECT") {
    street.addEventListener("change", function () { community.value = ""; });
  }

  const firstError = form.querySelector("[aria-invalid=true]");
  if (firstError) firstError.focus();
})();
