// The dashboard's own few lines: confirm deletes, copy pull commands. No inline script
// (the Content-Security-Policy allows scripts from this origin only).
"use strict";
// Scripts run: say so, and which htmx (progressive enhancement hooks and tests read it).
document.documentElement.classList.add("js");
document.documentElement.setAttribute(
  "data-htmx", typeof window.htmx === "undefined" ? "missing" : window.htmx.version
);
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) {
    return;
  }
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  });
});
