/* The knowledge base's import page: a file too large for the server is refused here, before
   it is sent (the form's data-max is the server's limit in bytes). */
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.id !== "import-form") return;
    var input = document.getElementById("file"), max = Number(form.getAttribute("data-max"));
    var tooLarge = input.files.length && input.files[0].size > max;
    document.getElementById("file-too-large").hidden = !tooLarge;
    if (tooLarge) { e.preventDefault(); }
  });
})();
