// Progressive enhancements: drag-and-drop uploads with one request per file,
// and live status for photos still being labelled.
(function () {
  "use strict";

  function csrfToken(form) {
    return form.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  function setupUpload() {
    const form = document.getElementById("upload-form");
    if (!form) return;
    const zone = document.getElementById("dropzone");
    const input = form.querySelector("input[type=file]");
    const queue = document.getElementById("upload-queue");
    const description = form.querySelector("textarea[name=description]");
    let chosen = [];

    function show(files) {
      chosen = Array.from(files);
      queue.replaceChildren(...chosen.map(function (file) {
        const item = document.createElement("li");
        item.dataset.name = file.name;
        const name = document.createElement("strong");
        name.textContent = file.name;
        const text = document.createElement("input");
        text.type = "text";
        text.placeholder = "Description (optional)";
        text.value = description.value;
        const state = document.createElement("span");
        state.className = "state";
        state.textContent = "ready";
        item.append(name, text, state);
        return item;
      }));
    }

    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("over");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      show(event.dataTransfer.files);
      uploadAll();
    });
    input.addEventListener("change", function () { show(input.files); });

    async function uploadOne(file, item) {
      const body = new FormData();
      body.append("photos", file);
      body.append("description", item.querySelector("input").value);
      const state = item.querySelector(".state");
      state.textContent = "uploading…";
      try {
        const response = await fetch(form.action || window.location.href, {
          method: "POST",
          body: body,
          headers: { "Accept": "application/json", "X-CSRFToken": csrfToken(form) },
        });
        const data = await response.json();
        const result = (data.results || [])[0];
        const error = result ? result.error : (data.errors || []).join(" ");
        state.className = "state " + (error ? "error" : "done");
        state.textContent = error || "stored";
        if (result && result.url) {
          const link = document.createElement("a");
          link.href = result.url;
          link.textContent = " open";
          state.append(link);
        }
        if (result && result.stored) {
          item.dataset.photoId = result.photo_id;
          item.dataset.status = "pending";
        }
      } catch (failure) {
        state.className = "state error";
        state.textContent = "upload failed: " + failure;
      }
    }

    async function uploadAll() {
      const items = Array.from(queue.children);
      const pending = chosen.map(function (file, index) { return [file, items[index]]; });
      const workers = [1, 2, 3].map(async function () {
        while (pending.length) {
          const next = pending.shift();
          await uploadOne(next[0], next[1]);
        }
      });
      await Promise.all(workers);
      chosen = [];
      input.value = "";
      pollStatus(queue, renderQueueItem);
    }

    form.addEventListener("submit", function (event) {
      if (!chosen.length) return;
      event.preventDefault();
      uploadAll();
    });
  }

  function renderQueueItem(item, summary) {
    item.dataset.status = summary.status;
    const labels = document.createElement("span");
    labels.className = "labels";
    if (summary.status === "failed") {
      labels.textContent = "labelling failed: " + summary.failure_reason;
    } else {
      labels.append(...summary.labels.slice(0, 5).map(function (label) {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = label.name + " " + Math.round(label.confidence) + "%";
        return chip;
      }));
    }
    item.append(labels);
  }

  function drawBoxes(summary) {
    const frame = document.getElementById("photo-boxes");
    if (!frame) return;
    const boxes = [];
    summary.labels.forEach(function (label) {
      label.boxes.forEach(function (box) {
        const element = document.createElement("div");
        element.className = "box";
        element.style.left = box.left * 100 + "%";
        element.style.top = box.top * 100 + "%";
        element.style.width = box.width * 100 + "%";
        element.style.height = box.height * 100 + "%";
        const caption = document.createElement("span");
        caption.textContent = label.name;
        element.append(caption);
        boxes.push(element);
      });
    });
    frame.replaceChildren(...boxes);
  }

  function renderDetail(summary) {
    const status = document.getElementById("photo-status");
    status.className = "status status-" + summary.status;
    status.textContent = summary.status_display +
      (summary.failure_reason ? ": " + summary.failure_reason : "");
    const list = document.getElementById("photo-labels");
    const items = summary.labels.map(function (label) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/?label=" + encodeURIComponent(label.name);
      link.textContent = label.name;
      const confidence = document.createElement("span");
      confidence.className = "confidence";
      confidence.textContent = " " + label.confidence.toFixed(1) + "%";
      item.append(link, confidence);
      return item;
    });
    if (!items.length) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "No labels.";
      items.push(empty);
    }
    list.replaceChildren(...items);
    drawBoxes(summary);
  }

  function renderCard(card, summary) {
    card.dataset.status = summary.status;
    const status = card.querySelector(".status");
    status.className = "status status-" + summary.status;
    status.textContent = summary.status_display;
    status.title = summary.failure_reason;
    const labels = card.querySelector(".labels");
    labels.replaceChildren(...summary.labels.slice(0, 3).map(function (label) {
      const chip = document.createElement("a");
      chip.className = "chip";
      chip.href = "?label=" + encodeURIComponent(label.name);
      chip.textContent = label.name;
      return chip;
    }));
    const image = card.querySelector("img");
    if (image) image.src = summary.thumbnail_url;
  }

  function pollStatus(root, render) {
    const url = root.dataset.statusUrl || document.querySelector("[data-status-url]").dataset.statusUrl;
    let rounds = 0;
    async function tick() {
      const pending = Array.from(root.querySelectorAll("[data-status=pending]"))
        .concat(root.dataset.status === "pending" ? [root] : []);
      if (!pending.length || rounds++ > 300) return;
      const query = pending.map(function (el) { return "id=" + el.dataset.photoId; });
      try {
        const response = await fetch(url + "?" + query.join("&"), { headers: { "Accept": "application/json" } });
        const data = await response.json();
        data.photos.forEach(function (summary) {
          if (summary.status === "pending") return;
          const target = root.dataset.photoId == summary.id ? root :
            root.querySelector("[data-photo-id='" + summary.id + "']");
          if (target) render(target, summary);
        });
      } catch (failure) { /* try again on the next tick */ }
      setTimeout(tick, rounds < 30 ? 700 : 3000);
    }
    setTimeout(tick, 500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupUpload();
    const grid = document.querySelector(".grid[data-status-url]");
    if (grid) pollStatus(grid, renderCard);
    const photo = document.querySelector("article.photo");
    if (photo) {
      drawBoxes(JSON.parse(document.getElementById("photo-summary").textContent));
      pollStatus(photo, function (target, summary) {
        target.dataset.status = summary.status;
        renderDetail(summary);
      });
    }
  });
})();
