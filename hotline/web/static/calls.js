// 来电弹屏: the workbench listens for calls to this agent (server-sent events), shows the
// caller's card, fills in the phone (which looks up the caller's recent tickets) and keeps
// the call's id for the ticket the agent logs.
(function () {
  "use strict";
  const card = document.getElementById("call-card");
  if (!card || !window.EventSource) return;
  const panel = document.getElementById("call-panel");
  const callField = document.getElementById("call");
  const phone = document.getElementById("caller_phone");
  const lineField = document.getElementById("line");

  async function show(id) {
    const response = await fetch("/agent/calls/" + encodeURIComponent(id), { credentials: "same-origin" });
    if (!response.ok) return;
    panel.innerHTML = await response.text(); // rendered (and escaped) by the server
    card.hidden = false;
    const call = panel.querySelector("[data-call]");
    if (!call) return;
    callField.value = call.dataset.call;
    // A merged line's call (12315…): the category suggestions keep to its subtree.
    if (lineField) lineField.value = call.dataset.line || "";
    if (phone && !phone.value) {
      phone.value = call.dataset.phone;
      phone.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }

  if (callField.value) show(callField.value); // the form came back refused: the call stays

  const source = new EventSource("/agent/calls/stream");
  source.addEventListener("call", function (event) {
    show(event.data);
  });
})();
