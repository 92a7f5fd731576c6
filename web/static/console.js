// Refreshes a ticket's page when the ticket changes (another agent, the customer, a
// timer): polls the revision; reloads at once unless the agent is typing in a form,
// in which case it only says so.
(function () {
  "use strict";
  var body = document.body;
  var ticket = body.getAttribute("data-ticket");
  var shown = body.getAttribute("data-revision");
  if (!ticket || shown === null) { return; }
  var typing = false;
  document.addEventListener("input", function () { typing = true; });
  function check() {
    fetch("/console/tickets/" + encodeURIComponent(ticket) + "/revision", {
      credentials: "same-origin", cache: "no-store"
    }).then(function (answer) {
      return answer.ok ? answer.json() : null;
    }).then(function (data) {
      if (!data || data.revision === null || String(data.revision) === shown) { return; }
      if (typing) {
        document.getElementById("changed").hidden = false;
      } else {
        // A new address (the revision in it) always loads; a bare reload might not.
        window.location.assign(
          window.location.pathname + "?revision=" + encodeURIComponent(data.revision) + "#timeline"
        );
      }
    }).catch(function () { /* offline for a moment: try again next round */ });
  }
  window.setInterval(check, 4000);
})();
