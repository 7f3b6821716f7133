// Small conveniences on top of pages that work without scripts: copy Monday's departure to the
// other weekdays, ask before ending the service, refresh the operator's page every minute.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll(".js-only")) el.hidden = false;

  const copy = document.querySelector("[data-copy-weekdays]");
  if (copy) {
    copy.addEventListener("click", () => {
      const monday = document.getElementById("dep_mon");
      for (const day of ["tue", "wed", "thu", "fri"]) {
        const input = document.getElementById("dep_" + day);
        if (input && monday) input.value = monday.value;
      }
    });
  }

  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  const refresh = document.querySelector("[data-auto-refresh]");
  if (refresh) {
    const key = "v2g-auto-refresh";
    refresh.checked = window.sessionStorage.getItem(key) === "1";
    let timer = null;
    const arm = () => {
      if (timer) window.clearTimeout(timer);
      timer = refresh.checked ? window.setTimeout(() => window.location.reload(), 60000) : null;
    };
    refresh.addEventListener("change", () => {
      window.sessionStorage.setItem(key, refresh.checked ? "1" : "0");
      arm();
    });
    arm();
  }
});
