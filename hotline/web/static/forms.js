/* Forms of the administrator's and the knowledge base's pages: a form that stops or takes
   something away asks first (data-confirm="…"), a select marked data-autosubmit submits its
   form when it changes (a filter; a <noscript> button does it without JavaScript). */
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var message = e.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { e.preventDefault(); }
  });
  document.addEventListener("change", function (e) {
    var field = e.target;
    if (field.hasAttribute && field.hasAttribute("data-autosubmit") && field.form) { field.form.submit(); }
  });
})();
