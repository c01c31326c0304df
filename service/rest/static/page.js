"use strict";

// The drawing pad and the result panel of GET /: plain browser APIs, no dependencies, no build step.
(() => {
  // On the 280 px pad a 22 px brush becomes a stroke of about 2 px once the service scales the
  // digit into MNIST's 20 px box: as thick as MNIST's pen.
  const BRUSH_WIDTH = 22;
  const IDLE_TEXT = "Draw a digit to see what the model thinks.";
  const KEY_STORAGE = "mnist-mlp-api-key";

  const byId = (id) => document.getElementById(id);
  const canvas = byId("pad");
  const pen = canvas.getContext("2d");
  const pad = byId("drop-zone");
  const ui = {
    result: byId("result"),
    digit: byId("digit"),
    confidence: byId("confidence"),
    guess: byId("guess"),
    source: byId("source"),
    error: byId("error"),
    model: byId("model"),
    auto: byId("auto"),
    keyForm: byId("key-form"),
  };
  const bars = buildBars(byId("bars"));

  let strokeEnd = null; // last point of the stroke being drawn, null between strokes
  let shownFile = null; // a picked, dropped or pasted file: shown on the pad and sent as it is
  let hasInk = false;
  let latestRequest = 0; // answers to superseded requests are dropped

  function buildBars(list) {
    return Array.from({ length: 10 }, (_, digit) => {
      const item = document.createElement("li");
      item.innerHTML =
        `<span class="label">${digit}</span>` +
        '<span class="track" aria-hidden="true"><span class="fill"></span></span>' +
        '<span class="value">–</span>';
      list.append(item);
      return { item, fill: item.querySelector(".fill"), value: item.querySelector(".value") };
    });
  }

  function resetPad() {
    pen.fillStyle = "#000";
    pen.fillRect(0, 0, canvas.width, canvas.height);
    Object.assign(pen, { fillStyle: "#fff", strokeStyle: "#fff", lineWidth: BRUSH_WIDTH });
    Object.assign(pen, { lineCap: "round", lineJoin: "round" });
    shownFile = null;
    setInk(false);
    dropPendingAnswer();
  }

  // An answer still on its way is about what the pad showed before, so it must not be shown.
  function dropPendingAnswer() {
    latestRequest += 1;
    ui.result.setAttribute("aria-busy", "false");
  }

  function setInk(value) {
    hasInk = value;
    pad.classList.toggle("inked", value);
  }

  // Pointer position in the pad's own pixels, whatever size CSS gives the canvas.
  function padPoint(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * canvas.width) / box.width,
      y: ((event.clientY - box.top) * canvas.height) / box.height,
    };
  }

  function startStroke(event) {
    if (event.button !== 0) return;
    event.preventDefault();
    if (shownFile) resetPad();
    canvas.setPointerCapture(event.pointerId);
    strokeEnd = padPoint(event);
    pen.beginPath();
    pen.arc(strokeEnd.x, strokeEnd.y, BRUSH_WIDTH / 2, 0, 2 * Math.PI);
    pen.fill();
    setInk(true);
  }

  function extendStroke(event) {
    if (!strokeEnd) return;
    // Coalesced events carry every point the pointer passed, for smooth fast strokes.
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of coalesced.length ? coalesced : [event]) {
      const next = padPoint(each);
      pen.beginPath();
      pen.moveTo(strokeEnd.x, strokeEnd.y);
      pen.lineTo(next.x, next.y);
      pen.stroke();
      strokeEnd = next;
    }
  }

  function endStroke() {
    if (!strokeEnd) return;
    strokeEnd = null;
    if (ui.auto.checked) predict();
  }

  async function predict() {
    if (shownFile) return classify(shownFile, shownFile.name, "auto");
    if (!hasInk) return showError("Draw a digit on the pad first, or choose an image.");
    const drawing = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    // The pad is already white on black like MNIST, so the service must not invert it.
    return classify(drawing, "drawing.png", "false");
  }

  async function classify(image, filename, invert) {
    const request = ++latestRequest;
    ui.result.setAttribute("aria-busy", "true");
    try {
      const answer = await postImage(image, filename, invert);
      if (request === latestRequest) showPrediction(answer.predictions[0], answer.model);
    } catch (error) {
      if (request === latestRequest) showError(error.message);
    } finally {
      if (request === latestRequest) ui.result.setAttribute("aria-busy", "false");
    }
  }

  // POST one image to /predict; throws an Error whose message is meant for the person.
  async function postImage(image, filename, invert) {
    const form = new FormData();
    form.append("file", image, filename);
    let response;
    try {
      const headers = apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {};
      response = await fetch(`predict?invert=${invert}`, { method: "POST", body: form, headers });
    } catch (error) {
      throw new Error(`Could not reach the service (${error.message}). Is it still running?`);
    }
    const body = await response.json().catch(() => null);
    if (response.ok && body) return body;
    if (response.status === 401) askForKey();
    throw new Error(body?.error ?? `The service answered ${response.status} without an explanation.`);
  }

  // With MNIST_API_KEYS set the service answers 401 until the page sends a key: the person
  // gives it once, and it stays in this tab's sessionStorage (never in the page's address).
  const apiKey = () => sessionStorage.getItem(KEY_STORAGE);

  function askForKey() {
    sessionStorage.removeItem(KEY_STORAGE);
    ui.keyForm.hidden = false;
    byId("key").focus();
  }

  function useKey(event) {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, byId("key").value.trim());
    byId("key").value = "";
    ui.keyForm.hidden = true;
    if (hasInk || shownFile) predict();
  }

  const percent = (probability) => `${(probability * 100).toFixed(1)}%`;

  function showPrediction(prediction, model) {
    ui.error.hidden = true;
    ui.digit.textContent = prediction.digit;
    ui.confidence.textContent = `${percent(prediction.confidence)} confident`;
    showVerdict(prediction);
    ui.source.textContent = shownFile ? `from ${shownFile.name}` : "from your drawing";
    ui.model.textContent = `Model ${model.name}, version ${model.version}`;
    prediction.probabilities.forEach((probability, digit) => {
      setBar(bars[digit], probability, percent(probability), digit === prediction.digit);
    });
  }

  // When the service says the image is not a digit, say so first; the digit stays, smaller,
  // as the model's best guess (with the service's reason, e.g. an empty image).
  function showVerdict(prediction) {
    const notDigit = prediction.is_digit === false;
    ui.result.classList.toggle("not-digit", notDigit);
    ui.guess.hidden = !notDigit;
    if (!notDigit) return;
    ui.confidence.textContent = "This does not look like a digit";
    const reason = prediction.not_digit_reason ? ` (${prediction.not_digit_reason})` : "";
    ui.guess.textContent =
      `Best guess: ${prediction.digit}, ${percent(prediction.confidence)} if it is one${reason}`;
  }

  function setBar(bar, probability, label, top) {
    bar.fill.style.setProperty("--p", probability);
    bar.value.textContent = label;
    bar.item.classList.toggle("top", top);
  }

  function showAnswerless(text) {
    ui.result.classList.remove("not-digit");
    ui.guess.hidden = true;
    ui.digit.textContent = "–";
    ui.confidence.textContent = text;
    ui.source.textContent = "";
    bars.forEach((bar) => setBar(bar, 0, "–", false));
  }

  function showError(message) {
    showAnswerless("No prediction");
    ui.error.textContent = message;
    ui.error.hidden = false;
  }

  function clearAll() {
    ui.error.hidden = true;
    resetPad();
    showAnswerless(IDLE_TEXT);
  }

  async function showFile(file) {
    if (!file) return;
    resetPad();
    shownFile = file;
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
      const [width, height] = [bitmap.width * scale, bitmap.height * scale];
      pen.imageSmoothingEnabled = scale < 1; // show small images' pixels as they are
      pen.drawImage(bitmap, (canvas.width - width) / 2, (canvas.height - height) / 2, width, height);
      bitmap.close();
      setInk(true);
    } catch {
      // The browser cannot show it; the service still gets it and says what is wrong.
    }
    return classify(file, file.name, "auto");
  }

  function listen() {
    canvas.addEventListener("pointerdown", startStroke);
    canvas.addEventListener("pointermove", extendStroke);
    canvas.addEventListener("pointerup", endStroke);
    canvas.addEventListener("pointercancel", () => (strokeEnd = null));
    byId("predict").addEventListener("click", predict);
    byId("clear").addEventListener("click", clearAll);
    ui.keyForm.addEventListener("submit", useKey);
    byId("file").addEventListener("change", ({ target }) => {
      showFile(target.files[0]);
      target.value = ""; // picking the same file again is a change too
    });
    // A file dropped anywhere on the page is taken, rather than opened in place of the page.
    window.addEventListener("dragover", (event) => {
      event.preventDefault();
      pad.classList.add("dragging");
    });
    window.addEventListener("dragleave", (event) => {
      if (!event.relatedTarget) pad.classList.remove("dragging");
    });
    window.addEventListener("drop", (event) => {
      event.preventDefault();
      pad.classList.remove("dragging");
      showFile(event.dataTransfer?.files[0]);
    });
    window.addEventListener("paste", (event) => showFile(event.clipboardData?.files[0]));
  }

  clearAll();
  listen();
})();
