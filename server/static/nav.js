/* The navigation's menu button: on phones it shows and hides the links (gridmap.css). */
(function () {
  "use strict";
  var nav = document.currentScript && document.currentScript.previousElementSibling;
  if (!nav || !nav.classList.contains("gridmap-nav")) { nav = document.querySelector(".gridmap-nav"); }
  var button = nav && nav.querySelector(".nav-toggle");
  if (!button) { return; }
  function setOpen(open) {
    nav.classList.toggle("open", open);
    button.setAttribute("aria-expanded", String(open));
  }
  button.addEventListener("click", function () { setOpen(!nav.classList.contains("open")); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && nav.classList.contains("open")) { setOpen(false); button.focus(); }
  });
})();
