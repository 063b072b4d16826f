/* Text pasted from another program can carry control characters: a vertical tab where a
   spreadsheet or a word processor broke a line, a form feed, a stray bell. The server refuses
   them (no database stores some, and none belongs in a citizen's words), and a refused form
   would cost the agent what was typed. So every text field drops them as they arrive: a
   vertical tab, a form feed or a next-line becomes a line break in a text area (a space in a
   one-line field), the others are removed, and a note under the field says so. A form sent
   by its button is cleaned once more, for text a script put in without an input event (a
   form a script sends with form.submit() fires no submit event: the server's refusal stands
   behind it). Passwords are left as typed: the server's refusal says what is wrong with
   them. An input method's composition is left alone until it ends. */
(function () {
  "use strict";
  var CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
  var CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;
  var BREAKS = /[\u000b\u000c\u0085]/g;
  var TEXT_TYPES = { text: 1, search: 1, tel: 1, email: 1, url: 1 };
  var NOTE = "已去掉粘贴内容中的不可见控制字符，请核对";

  function isText(field) {
    if (!field || field.readOnly || field.disabled) { return false; }
    if (field.tagName === "TEXTAREA") { return true; }
    return field.tagName === "INPUT" && TEXT_TYPES[(field.getAttribute("type") || "text").toLowerCase()] === 1;
  }

  function cleaned(text, multiline) {
    return text.replace(BREAKS, multiline ? "\n" : " ").replace(CONTROLS, "");
  }

  function note(field) {
    // Under the field, or under the row it shares with a button (获取验证码).
    var anchor = (field.parentElement && field.parentElement.classList.contains("code-row")) ? field.parentElement : field;
    var next = anchor.nextElementSibling;
    if (next && next.classList.contains("field-note")) { return; }
    var small = document.createElement("small");
    small.className = "field-note";
    small.setAttribute("role", "status");
    small.textContent = NOTE;
    anchor.insertAdjacentElement("afterend", small);
  }

  function clean(field) {
    if (!isText(field) || !CONTROL.test(field.value)) { return; }
    var multiline = field.tagName === "TEXTAREA";
    var value = field.value;
    var caret = null;
    try { caret = field.selectionEnd; } catch (ignored) { caret = null; } // email fields have none
    field.value = cleaned(value, multiline);
    if (caret !== null) {
      var at = cleaned(value.slice(0, caret), multiline).length;
      try { field.setSelectionRange(at, at); } catch (ignored) { /* no selection here */ }
    }
    note(field);
  }

  // In the capture phase, so the page's own listeners (the category search, the counters)
  // see the cleaned text.
  document.addEventListener("input", function (e) { if (!e.isComposing) { clean(e.target); } }, true);
  document.addEventListener("compositionend", function (e) { clean(e.target); }, true);
  // A form emptied (reset) has nothing left to note.
  document.addEventListener("reset", function (e) {
    var notes = e.target.querySelectorAll ? e.target.querySelectorAll(".field-note") : [];
    for (var i = 0; i < notes.length; i++) { notes[i].remove(); }
  }, true);
  document.addEventListener("submit", function (e) {
    var fields = e.target.elements || [];
    for (var i = 0; i < fields.length; i++) { clean(fields[i]); }
  }, true);
})();
