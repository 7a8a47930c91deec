// Private mode in the page: the photo (file, drop or webcam snapshot) and the live webcam are decoded,
// searched for faces and embedded here; only each face's box, probability and vector go to the server,
// through the gr.HTML components' events ("search", "clear", "live"). The server's answer fills the same
// gallery, face picker, details and result card as in server mode; the boxed photo is drawn here, and so
// is your face on the card. In server mode (chosen, or when this browser cannot run private mode) these
// components step aside and the page's own photo and webcam components send the photo as before.

import {decode, pixelsOf} from "./faces.js";
import {loadModels, manifest, unsupported} from "./models.js";

const MODE_KEY = "lookalike-mode";  // the visitor's choice of mode; nothing else is stored
const COLOURS = ["#ff3b30", "#34c759", "#007aff", "#ff9500", "#af52de", "#00c7be", "#ffcc00", "#ff2d55"];
const DISPLAY_MAX_SIDE = 1024;
const LIVE_EVERY_MS = 1000;
const CAMERA = {video: {facingMode: "user", width: {ideal: 1280}, height: {ideal: 960}}};  // the front camera

const state = {
  mode: "private",       // "private" or "server"
  why: "",               // why private mode is off, when the page fell back
  info: null,            // the manifest
  models: null,          // a Promise of FaceModels
  loaded: false,         // the models are downloaded and their sessions made
  progress: null,        // [done, total] bytes while downloading
  faces: [],             // the current photo's faces (their crops make the result card)
  lines: new Set(),      // every mode line to keep up to date
};

/** For tests and benchmarks: the faces of a photo as this page finds them, and the mode. */
window.lookalikePrivate = {
  mode: () => state.mode,
  why: () => state.why,
  loaded: () => state.loaded,
  threads: async () => (await models()).ort.env.wasm.numThreads,
  faces: async (blob) => (await faces(await decode(blob, state.info.detector.max_image_pixels)))
    .map(({box, probability, landmarks, vector}) => ({box, probability, landmarks, vector})),
};

function wantedMode() {
  const asked = new URLSearchParams(location.search).get("mode");
  if (asked === "server" || asked === "private") return asked;
  try {
    return localStorage.getItem(MODE_KEY) === "server" ? "server" : "private";
  } catch (error) {
    return "private";
  }
}

let started = null;
/** Decide the mode once per page: private where this browser and the server can, else server and why. */
function start() {
  if (started) return started;
  started = (async () => {
    const mode = wantedMode();
    const problem = unsupported();
    if (problem) return fallBack(problem);
    try {
      state.info = await manifest();
    } catch (error) {
      return fallBack("its settings could not be loaded");
    }
    if (state.info.state === "off") return fallBack("this server does not offer it");
    if (state.info.state === "failed") return fallBack("the server could not prepare its face models");
    if (state.info.state !== "ready") return waitForServer(mode);
    setMode(mode, false);
  })();
  return started;
}

function waitForServer(mode) {
  state.why = "the server is still preparing its face models";
  setMode("server", false);
  setTimeout(async () => {
    try {
      state.info = await manifest();
    } catch (error) { /* tried again below */ }
    if (state.info && state.info.state === "ready") {
      state.why = "";
      setMode(mode, false);
    } else if (!state.info || state.info.state === "preparing") {
      waitForServer(mode);
    } else {
      fallBack("the server could not prepare its face models");
    }
  }, 3000);
}

function fallBack(why) {
  state.why = why;
  setMode("server", false);
}

function setMode(mode, remember = true) {
  state.mode = mode;
  document.body.classList.toggle("lookalike-private", mode === "private");
  if (remember) {
    try { localStorage.setItem(MODE_KEY, mode); } catch (error) { /* not kept: asked again next visit */ }
  }
  if (mode === "private") models().catch(() => {});
  render();
}

/** The models, downloading them the first time (the mode line shows the progress). */
function models() {
  if (!state.models) {
    const threads = Number(new URLSearchParams(location.search).get("threads")) || 0;  // 0: as the page allows
    state.models = loadModels(state.info, (done, total) => { state.progress = [done, total]; render(); }, threads)
      .then((loaded) => { state.progress = null; state.loaded = true; render(); return loaded; })
      .catch((error) => {
        state.models = null;
        state.progress = null;
        fallBack(`the face models could not be downloaded: ${error.message || error}`);
        throw error;
      });
  }
  return state.models;
}

async function faces(image) {
  return (await models()).faces(image);
}

/** What the server gets of a face: its box, probability and vector (never its crop or landmarks). */
function sent({box, probability, vector}) {
  return {box, probability, vector};
}

/** ``image`` ({width, height, data}: RGBA pixels) on a canvas, to draw from. */
function canvasOf(image) {
  const canvas = new OffscreenCanvas(image.width, image.height);
  canvas.getContext("2d").putImageData(new ImageData(image.data, image.width, image.height), 0, 0);
  return canvas;
}

// -- the mode line ----------------------------------------------------------------------------------

function render() {
  for (const line of state.lines) renderLine(line);
}

function renderLine(line) {
  const [text, action] = line.querySelectorAll(".private-text, .private-switch");
  const mb = (bytes) => (bytes / 1e6).toFixed(1);
  if (state.mode === "private" && state.progress) {
    const [done, total] = state.progress;
    text.textContent = `🔒 Private mode: downloading the face models once (${mb(done)} of ${mb(total)} MB, ` +
      `${Math.floor((100 * done) / total)} %); later visits start at once.`;
    action.textContent = "Search on the server now";
  } else if (state.mode === "private") {
    text.textContent = "🔒 Private mode: your photo stays on this device. Faces are found and embedded " +
      "here; only each face's box and its 512-number face vector go to the server.";
    action.textContent = "Search on the server instead";
  } else if (state.why) {
    text.textContent = `Private mode is unavailable (${state.why}): searching on the server, which ` +
      "receives your photo for one search.";
    action.textContent = "";
  } else {
    text.textContent = "Server mode: your photo is sent to the server for one search.";
    action.textContent = "Use private mode";
  }
  action.hidden = !action.textContent;
}

function modeLine(element) {
  const line = element.querySelector(".private-line");
  line.querySelector(".private-switch").addEventListener("click", () => {
    setMode(state.mode === "private" ? "server" : "private");
  });
  state.lines.add(line);
  renderLine(line);
}

// -- drawing -------------------------------------------------------------------------------------

function drawBoxed(canvas, image, found) {
  const scale = Math.min(1, DISPLAY_MAX_SIDE / Math.max(image.width, image.height));
  canvas.width = Math.max(1, Math.round(image.width * scale));
  canvas.height = Math.max(1, Math.round(image.height * scale));
  const context = canvas.getContext("2d");
  context.drawImage(canvasOf(image), 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 250));
  const size = Math.max(14, Math.round(Math.max(canvas.width, canvas.height) / 30));
  context.font = `${size}px sans-serif`;
  context.textBaseline = "top";
  found.forEach((face, n) => {
    const colour = COLOURS[n % COLOURS.length];
    const [x1, y1, x2, y2] = face.box.map((v) => v * scale);
    context.strokeStyle = colour;
    context.lineWidth = line;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = String(n + 1), pad = line * 2, width = context.measureText(label).width;
    const top = Math.max(0, y1 - size - 2 * pad);
    context.fillStyle = colour;
    context.fillRect(x1, top, width + 2 * pad, size + 2 * pad);
    context.fillStyle = "#fff";
    context.fillText(label, x1 + pad, top + pad);
  });
  canvas.hidden = false;
}

/** Your face on the result card the server drew with an empty slot for it (``data-slot``: x, y, side). */
async function completeCard(img) {
  const number = Number(img.dataset.face || 0), face = state.faces[number - 1];
  if (!face || img.dataset.completed) return;
  img.dataset.completed = "1";
  await img.decode().catch(() => {});
  const [x, y, side] = img.dataset.slot.split(",").map(Number);
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  context.imageSmoothingQuality = "high";
  context.drawImage(canvasOf(face.crop), x, y, side, side);
  const url = canvas.toDataURL("image/png");
  img.src = url;
  const link = img.closest(".compare")?.querySelector("a.save-card");
  if (link) link.href = url;
}

function watchCards() {
  const complete = () => document.querySelectorAll("#compare img.card[data-slot]:not([data-completed])")
    .forEach((img) => completeCard(img));
  new MutationObserver(complete).observe(document.body, {childList: true, subtree: true});
}

function showError(element, text) {
  const note = element.querySelector(".private-error");
  note.textContent = text;
  note.hidden = !text;
}

// -- the Photo tab ---------------------------------------------------------------------------------

/** The photo tab's private component; ``events.search(faces)`` and ``events.clear()`` reach the server. */
export function mountPhoto(element, events) {
  modeLine(element);
  watchCards();
  const input = element.querySelector("input[type=file]");
  const canvas = element.querySelector("canvas.private-boxed");
  const video = element.querySelector("video");
  const drop = element.querySelector(".private-drop");
  const snap = element.querySelector(".private-snap");
  const again = element.querySelector(".private-new");
  const busy = element.querySelector(".private-busy");

  const search = async (source) => {
    showError(element, "");
    busy.hidden = false;
    try {
      const image = source instanceof Blob ? await decode(source, state.info.detector.max_image_pixels) : source;
      state.faces = await faces(image);
      drawBoxed(canvas, image, state.faces);
      drop.hidden = true;
      again.hidden = false;
      events.search({faces: state.faces.map(sent)});
    } catch (error) {
      showError(element, error.message || String(error));
    } finally {
      busy.hidden = true;
    }
  };
  input.addEventListener("change", () => {
    if (input.files && input.files[0]) search(input.files[0]);
    input.value = "";  // the same file can be chosen again; nothing of it is kept
  });
  drop.addEventListener("dragover", (event) => event.preventDefault());
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) search(file);
  });
  element.querySelector(".private-camera").addEventListener("click", async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia(CAMERA);
      await video.play();
      video.hidden = snap.hidden = false;
    } catch (error) {
      showError(element, "The webcam could not be opened: allow the camera for this page, or choose a photo.");
    }
  });
  snap.addEventListener("click", () => {
    const image = pixelsOf(video, video.videoWidth, video.videoHeight);
    video.srcObject.getTracks().forEach((track) => track.stop());
    video.hidden = snap.hidden = true;
    search(image);
  });
  again.addEventListener("click", () => {
    state.faces = [];
    canvas.hidden = again.hidden = true;
    drop.hidden = false;
    events.clear();
  });
  start();
}

// -- the Live tab ----------------------------------------------------------------------------------

/** The live tab's private component: about once a second (never while a frame is still being worked on),
 * the largest face of the webcam's frame goes to the server as ``events.live``. */
export function mountLive(element, events) {
  modeLine(element);
  const video = element.querySelector("video");
  const canvas = element.querySelector("canvas");
  const button = element.querySelector(".private-live-toggle");
  let running = false;

  const tick = async () => {
    if (!running) return;
    const began = performance.now();
    try {
      const image = pixelsOf(video, video.videoWidth, video.videoHeight);
      const found = await faces(image);
      drawBoxed(canvas, image, found);
      if (found.length) {
        const largest = found.reduce((best, face, n) => (area(face) > area(found[best]) ? n : best), 0);
        events.live({faces: [sent(found[largest])], count: found.length, number: largest + 1});
      } else {
        events.live({faces: [], count: 0, number: 0});
      }
      showError(element, "");
    } catch (error) {
      showError(element, error.message || String(error));
    }
    setTimeout(tick, Math.max(0, LIVE_EVERY_MS - (performance.now() - began)));
  };
  button.addEventListener("click", async () => {
    if (running) {
      running = false;
      video.srcObject?.getTracks().forEach((track) => track.stop());
      button.textContent = "Start the webcam";
      return;
    }
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia(CAMERA);
      await video.play();
    } catch (error) {
      showError(element, "The webcam could not be opened: allow the camera for this page.");
      return;
    }
    running = true;
    button.textContent = "Stop the webcam";
    tick();
  });
  start();
}

function area(face) {
  const [x1, y1, x2, y2] = face.box;
  return Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
}
