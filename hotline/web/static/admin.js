/* The administrator's users page: only department roles have a department, only integration
   accounts a source (the roles that need a department are in #role's data-department-roles). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var role = document.getElementById("role"), dept = document.getElementById("department");
    var source = document.getElementById("source");
    if (!role || !dept || !source || !role.hasAttribute("data-department-roles")) return;
    var departmentRoles = JSON.parse(role.getAttribute("data-department-roles"));
    function sync() {
      var needs = departmentRoles.indexOf(role.value) >= 0;
      dept.disabled = !needs && role.value !== "";
      dept.required = needs;
      if (dept.disabled) { dept.value = ""; }
      var integration = role.value === "integration";
      source.disabled = !integration && role.value !== "";
      source.required = integration;
      if (source.disabled) { source.value = ""; }
    }
    role.addEventListener("change", sync);
    sync();
  });
})();
