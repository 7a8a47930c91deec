// Private mode's downloads: the manifest, ONNX Runtime Web and the four models, fetched from this app only.
// The large files are kept in the browser's Cache API (its HTTP cache drops files of tens of MB), under
// content-hashed URLs: a second visit reads them from there and downloads nothing; files of older
// versions are deleted.

import {FaceModels} from "./faces.js";

const CACHE = "lookalike-private";
const MODELS = ["pnet", "rnet", "onet", "facenet"];  // the manifest's model keys, in the order they run
const bundle = new URL("./", import.meta.url);  // .../private/<bundle>/
const root = new URL("../../", bundle);           // the app's root

/** The manifest (never cached): {state, ort, models, detector, ...}. */
export async function manifest() {
  const response = await fetch(new URL("private/manifest.json", root), {cache: "no-store"});
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return response.json();
}

/** Why this browser cannot run private mode, or "" when it can. */
export function unsupported() {
  if (typeof WebAssembly !== "object") return "this browser cannot run WebAssembly";
  if (typeof OffscreenCanvas !== "function" || typeof createImageBitmap !== "function") {
    return "this browser cannot decode photos in a page script";
  }
  if (navigator.deviceMemory && navigator.deviceMemory < 1) return "this device has too little memory";
  return "";
}

async function openCache() {
  try {
    return typeof caches === "object" ? await caches.open(CACHE) : null;
  } catch (error) {  // storage off (some private windows): download every visit
    return null;
  }
}

/** The bytes at ``url`` from the cache, else downloaded (reporting each chunk to ``progress``) and cached. */
async function cachedBytes(cache, url, progress) {
  const hit = cache && await cache.match(url);
  if (hit) {
    const bytes = await hit.arrayBuffer();
    progress(bytes.byteLength);
    return bytes;
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`a model download failed (${response.status})`);
  const reader = response.body.getReader(), chunks = [];
  let size = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    progress(value.length);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.length; }
  if (cache) {
    try {
      await cache.put(url, new Response(bytes, {headers: {"content-type": "application/octet-stream"}}));
    } catch (error) { /* full storage: used this time, fetched again next time */ }
  }
  return bytes.buffer;
}

/** Drop cached files that the manifest no longer names (older models or runtime). */
async function prune(cache, keep) {
  if (!cache) return;
  for (const request of await cache.keys()) {
    if (!keep.has(request.url)) await cache.delete(request);
  }
}

/** Threads for wasm: two where the page is cross-origin isolated (SharedArrayBuffer), else one. */
export function wasmThreads(asked) {
  if (asked) return asked;
  return self.crossOriginIsolated ? Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1)) : 1;
}

/** ONNX Runtime and the four sessions, ready to run: a FaceModels. ``progress(doneBytes, totalBytes)``. */
export async function loadModels(info, progress, threads = 0) {
  const urls = {wasm: new URL(info.ort["ort-wasm-simd-threaded.wasm"], root).href};
  for (const [key, model] of Object.entries(info.models)) urls[key] = new URL(model.url, root).href;
  const total = info.wasm_bytes + info.model_bytes;
  let done = 0;
  const step = (bytes) => { done += bytes; progress(done, total); };
  const cache = await openCache();
  const ort = await import(new URL(info.ort["ort.wasm.min.mjs"], root).href);
  const [wasm, ...models] = await Promise.all([cachedBytes(cache, urls.wasm, step),
    ...MODELS.map((key) => cachedBytes(cache, urls[key], step))]);
  await prune(cache, new Set(Object.values(urls)));
  ort.env.wasm.wasmBinary = wasm;
  ort.env.wasm.wasmPaths = {mjs: new URL(info.ort["ort-wasm-simd-threaded.mjs"], root).href};
  ort.env.wasm.numThreads = wasmThreads(threads);
  const options = {executionProviders: ["wasm"], graphOptimizationLevel: "all"};
  const sessions = {};
  for (const [n, key] of MODELS.entries()) {
    sessions[key] = await ort.InferenceSession.create(new Uint8Array(models[n]), options);
  }
  return new FaceModels(ort, sessions, info.detector);
}
