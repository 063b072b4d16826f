/* A ticket's page: the department pickers of 派单/改派 are narrowed by typing part of a name.
   The page works without it; this only shortens the list. */
(function () {
  "use strict";
  document.addEventListener("input", function (e) {
    var box = e.target;
    if (!box.matches || !box.matches("input.dept-filter")) return;
    var target = document.getElementById(box.dataset.filter);
    if (!target) return;
    var words = box.value.trim();
    var items = target.querySelectorAll(target.tagName === "SELECT" ? "option[value]:not([value=''])" : "label.check");
    var firstShown = null;
    Array.prototype.forEach.call(items, function (item) {
      var shown = !words || item.textContent.indexOf(words) >= 0;
      item.hidden = !shown;
      if (shown && !firstShown) firstShown = item;
    });
    Array.prototype.forEach.call(target.querySelectorAll("optgroup, fieldset"), function (group) {
      group.hidden = !group.querySelector(target.tagName === "SELECT" ? "option:not([hidden])" : "label.check:not([hidden])");
    });
    // One department left in the select: choose it.
    if (target.tagName === "SELECT" && firstShown && words) {
      var shown = target.querySelectorAll("option[value]:not([value='']):not([hidden])");
      if (shown.length === 1) target.value = shown[0].value;
    }
  });
  // Enter in a filter never submits the form (a dispatch is sent by its button): it moves on to the list.
  document.addEventListener("keydown", function (e) {
    var box = e.target;
    if (e.key !== "Enter" || !box.matches || !box.matches("input.dept-filter")) return;
    e.preventDefault();
    var target = document.getElementById(box.dataset.filter);
    var first = target && target.querySelector("select, input:not([hidden])");
    (target && target.tagName === "SELECT" ? target : first || box).focus();
  });
})();
