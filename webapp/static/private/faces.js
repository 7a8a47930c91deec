// The face pipeline in the browser: the server's (lookalike/faces) step for step, so that the boxes and
// vectors match its own (tests/test_private_mode.py holds them to the server's).
//   decode:  the photo upright (EXIF orientation applied), transparency over white, no colour conversion;
//   detect:  MTCNN as lookalike/faces/fast_mtcnn.py: the photo shrunk to max_side, the same pyramid,
//            area resampling, thresholds, NMS, box regression and squaring;
//   extract: each box cropped from the full photo and resized to 160x160 as PIL's bilinear resize does,
//            standardised as (x - 127.5) / 128;
//   embed:   FaceNet, one batch of all faces.

const f32 = Math.fround;

/** The photo as upright RGBA pixels: {width, height, data}. Throws an Error with a sentence to show. */
export async function decode(blob, maxPixels) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {imageOrientation: "from-image", colorSpaceConversion: "none",
                                            premultiplyAlpha: "none"});
  } catch (error) {
    throw new Error("The file is not an image that can be read (JPEG, PNG, WebP, GIF, ...).");
  }
  const {width, height} = bitmap;
  if (width * height > maxPixels) {
    bitmap.close();
    throw new Error(`The image is ${width}x${height} pixels; the limit is ${maxPixels / 1e6} megapixels, ` +
                    "so please send a smaller photo.");
  }
  const image = pixelsOf(bitmap, width, height);
  bitmap.close();
  return image;
}

/** The RGBA pixels of anything a canvas can draw (a bitmap, a video frame), over white. */
export function pixelsOf(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", {willReadFrequently: true});
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  context.drawImage(source, 0, 0, width, height);
  return {width, height, data: context.getImageData(0, 0, width, height).data};
}

// -- PIL's bilinear resize (Resample.c, 8 bits per channel: fixed-point weights, rounded between passes) --

const PRECISION_BITS = 22;

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;  // the bilinear filter's support is 1
  const bounds = new Int32Array(outSize * 2);
  const weights = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const count = Math.min(Math.trunc(center + support + 0.5), inSize) - first;
    const row = new Float64Array(count);
    let total = 0;
    for (let x = 0; x < count; x++) {
      const w = Math.max(0, 1 - Math.abs((x + first - center + 0.5) / filterScale));
      row[x] = w;
      total += w;
    }
    const fixed = new Int32Array(count);
    for (let x = 0; x < count; x++) {
      const w = total !== 0 ? row[x] / total : row[x];
      fixed[x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[2 * i] = first;
    bounds[2 * i + 1] = count;
    weights.push(fixed);
  }
  return {bounds, weights};
}

function clip8(sum) {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** ``image.crop((x0, y0, x1, y1)).resize((outW, outH), Image.BILINEAR)`` on RGBA pixels: RGBA out. */
export function resizeBilinear(image, x0, y0, x1, y1, outW, outH) {
  const inW = x1 - x0, inH = y1 - y0, src = image.data, stride = image.width * 4;
  const horizontal = coefficients(inW, outW), vertical = coefficients(inH, outH);
  // PIL resamples only the rows the vertical pass reads, and skips a pass that changes nothing.
  const needH = outW !== inW, needV = outH !== inH;
  const rowFirst = needV ? vertical.bounds[0] : 0;
  const rowLast = needV ? vertical.bounds[2 * outH - 2] + vertical.bounds[2 * outH - 1] : inH;
  const rows = rowLast - rowFirst;
  let temp = null;
  if (needH) {
    temp = new Uint8ClampedArray(outW * rows * 4);
    for (let y = 0; y < rows; y++) {
      const line = (y0 + rowFirst + y) * stride;
      for (let i = 0; i < outW; i++) {
        const first = horizontal.bounds[2 * i], k = horizontal.weights[i];
        let r = 1 << (PRECISION_BITS - 1), g = r, b = r;
        for (let x = 0; x < k.length; x++) {
          const at = line + (x0 + first + x) * 4;
          r += src[at] * k[x]; g += src[at + 1] * k[x]; b += src[at + 2] * k[x];
        }
        const out = (y * outW + i) * 4;
        temp[out] = clip8(r); temp[out + 1] = clip8(g); temp[out + 2] = clip8(b); temp[out + 3] = 255;
      }
    }
  }
  const read = temp ? (y, x) => (y * outW + x) * 4 : (y, x) => (y0 + rowFirst + y) * stride + (x0 + x) * 4;
  const from = temp || src;
  const out = new Uint8ClampedArray(outW * outH * 4);
  for (let j = 0; j < outH; j++) {
    const first = needV ? vertical.bounds[2 * j] - rowFirst : j, k = needV ? vertical.weights[j] : null;
    for (let i = 0; i < outW; i++) {
      const o = (j * outW + i) * 4;
      if (!needV) {
        const at = read(first, i);
        out[o] = from[at]; out[o + 1] = from[at + 1]; out[o + 2] = from[at + 2]; out[o + 3] = 255;
        continue;
      }
      let r = 1 << (PRECISION_BITS - 1), g = r, b = r;
      for (let y = 0; y < k.length; y++) {
        const at = read(first + y, i);
        r += from[at] * k[y]; g += from[at + 1] * k[y]; b += from[at + 2] * k[y];
      }
      out[o] = clip8(r); out[o + 1] = clip8(g); out[o + 2] = clip8(b); out[o + 3] = 255;
    }
  }
  return {width: outW, height: outH, data: out};
}

// -- summed-area tables: torch's interpolate(mode="area") onto any grid, as lookalike/faces/summed_areas.py --

class SummedAreas {
  constructor(image) {
    const {width: w, height: h, data} = image;
    this.width = w + 1;
    this.height = h + 1;
    const Table = w * h * 255 < 2 ** 31 ? Int32Array : Float64Array;
    const table = this.table = new Table(this.width * this.height * 3);
    for (let y = 1; y <= h; y++) {
      let r = 0, g = 0, b = 0;
      for (let x = 1; x <= w; x++) {
        const p = ((y - 1) * w + (x - 1)) * 4;
        r += data[p]; g += data[p + 1]; b += data[p + 2];
        const t = (y * this.width + x) * 3, above = ((y - 1) * this.width + x) * 3;
        table[t] = table[above] + r; table[t + 1] = table[above + 1] + g; table[t + 2] = table[above + 2] + b;
      }
    }
  }

  /** Rows y0..y1 and columns x0..x1 averaged onto side_h x side_w, normalised for MTCNN, into ``out`` at
   * ``offset`` (3 planes): adaptive average pooling's bins, each bin's exact sum over its area in float32. */
  resample(y0, y1, x0, x1, outH, outW, out, offset) {
    const rows = binEdges(y0, y1, outH), cols = binEdges(x0, x1, outW), t = this.table, W = this.width;
    const plane = outH * outW;
    for (let i = 0; i < outH; i++) {
      const ra = rows[2 * i] * W, rb = rows[2 * i + 1] * W, height = rows[2 * i + 1] - rows[2 * i];
      for (let j = 0; j < outW; j++) {
        const ca = cols[2 * j], cb = cols[2 * j + 1];
        const area = f32(height * (cb - ca));
        for (let c = 0; c < 3; c++) {
          const sum = t[(rb + cb) * 3 + c] - t[(ra + cb) * 3 + c] - t[(rb + ca) * 3 + c] + t[(ra + ca) * 3 + c];
          // (x - 127.5) * 0.0078125 in float32, as facenet-pytorch scales MTCNN's input
          out[offset + c * plane + i * outW + j] = f32(f32(f32(sum) / area) - 127.5) * 0.0078125;
        }
      }
    }
  }
}

function binEdges(start, stop, out) {
  const length = stop - start, edges = new Int32Array(out * 2);
  for (let i = 0; i < out; i++) {
    edges[2 * i] = start + Math.floor((i * length) / out);
    edges[2 * i + 1] = start + Math.ceil(((i + 1) * length) / out);
  }
  return edges;
}

// -- MTCNN's stages --

export function pyramidScales(height, width, minFaceSize, factor) {
  const m = 12.0 / minFaceSize;
  let minl = Math.min(height, width) * m, scale = m;
  const scales = [];
  while (minl >= 12) {
    scales.push(scale);
    scale = scale * factor;
    minl = minl * factor;
  }
  return scales;
}

/** Greedy non-maximum suppression of boxes [x1, y1, x2, y2, score, ...] (highest score first); "union":
 * torchvision's IoU, "min": facenet-pytorch's overlap over the smaller box, both with its +1. */
function nms(boxes, threshold, method = "union") {
  const order = boxes.map((_, i) => i).sort((a, b) => boxes[b][4] - boxes[a][4]);
  const plus = method === "min" ? 1 : 0;
  const area = (b) => (b[2] - b[0] + plus) * (b[3] - b[1] + plus);
  const kept = [], dropped = new Uint8Array(boxes.length);
  for (const i of order) {
    if (dropped[i]) continue;
    kept.push(boxes[i]);
    const a = boxes[i];
    for (const j of order) {
      if (dropped[j] || j === i) continue;
      const b = boxes[j];
      const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]) + plus);
      const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]) + plus);
      const inter = w * h;
      const overlap = method === "min" ? inter / Math.min(area(a), area(b)) : inter / (area(a) + area(b) - inter);
      if (overlap > threshold) dropped[j] = 1;
    }
    dropped[i] = 1;
  }
  return kept;
}

function rerec(b) {
  const h = f32(b[3] - b[1]), w = f32(b[2] - b[0]), side = Math.max(w, h);
  const x1 = f32(f32(b[0] + f32(w * 0.5)) - f32(side * 0.5)), y1 = f32(f32(b[1] + f32(h * 0.5)) - f32(side * 0.5));
  return [x1, y1, f32(x1 + side), f32(y1 + side), ...b.slice(4)];
}

function bbreg(b, reg) {
  const w = f32(f32(b[2] - b[0]) + 1), h = f32(f32(b[3] - b[1]) + 1);
  return [f32(b[0] + f32(reg[0] * w)), f32(b[1] + f32(reg[1] * h)), f32(b[2] + f32(reg[2] * w)),
          f32(b[3] + f32(reg[3] * h)), ...b.slice(4)];
}

export class FaceModels {
  /** The four ONNX Runtime sessions: {pnet, rnet, onet, facenet}, and ort (the runtime's module). */
  constructor(ort, sessions, settings) {
    this.ort = ort;
    this.sessions = sessions;
    this.settings = settings;
  }

  async run(name, data, shape) {
    const session = this.sessions[name];
    const feeds = {[session.inputNames[0]]: new this.ort.Tensor("float32", data, shape)};
    const outputs = await session.run(feeds);
    const named = {};
    for (const key of session.outputNames) named[key] = outputs[key];
    return named;
  }

  /** Every face of an RGBA image, left to right: {box, probability, landmarks, vector, crop (160x160 RGBA)}. */
  async faces(image) {
    const detections = await this.detect(image);
    if (!detections.length) return [];
    const crops = new Float32Array(detections.length * 3 * 160 * 160);
    const shown = detections.map((face, n) => {
      const [x1, y1, x2, y2] = face.box;
      const left = Math.trunc(Math.max(x1, 0)), top = Math.trunc(Math.max(y1, 0));
      const right = Math.trunc(Math.min(x2, image.width)), bottom = Math.trunc(Math.min(y2, image.height));
      const crop = resizeBilinear(image, left, top, right, bottom, 160, 160);
      const plane = 160 * 160;
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) crops[(n * 3 + c) * plane + p] = (crop.data[p * 4 + c] - 127.5) / 128;
      }
      return crop;
    });
    const {vectors} = await this.run("facenet", crops, [detections.length, 3, 160, 160]);
    return detections.map((face, n) => ({...face, crop: shown[n],
                                         vector: Array.from(vectors.data.subarray(n * 512, (n + 1) * 512))}));
  }

  /** MTCNN's boxes of an RGBA image, in its pixels, left to right (lookalike/faces/detection.py). */
  async detect(image) {
    const {max_side: maxSide} = this.settings;
    const longest = Math.max(image.width, image.height);
    let small = image, scale = 1;
    if (longest > maxSide) {
      scale = maxSide / longest;
      const w = Math.max(1, Math.round(image.width * scale)), h = Math.max(1, Math.round(image.height * scale));
      small = resizeBilinear(image, 0, 0, image.width, image.height, w, h);
    }
    if (Math.min(small.width, small.height) < Math.max(12, this.settings.min_face_size)) return [];
    const found = await this.mtcnn(small);
    const back = f32(1 / scale);
    return found.map((b) => ({box: b.slice(0, 4).map((v) => f32(v * back)), probability: b[4],
                              landmarks: b.points.map(([x, y]) => [f32(x * back), f32(y * back)])}))
      .sort((a, b) => a.box[0] - b.box[0]);
  }

  async mtcnn(image) {
    const {min_face_size: minFace, thresholds, factor} = this.settings;
    const areas = new SummedAreas(image);
    const {width: W, height: H} = image;
    // Stage 1: P-Net over each pyramid level; NMS within the level, then over all levels.
    let boxes = [];
    for (const scale of pyramidScales(H, W, minFace, factor)) {
      const h = Math.trunc(H * scale + 1), w = Math.trunc(W * scale + 1);
      const pixels = new Float32Array(3 * h * w);
      areas.resample(0, H, 0, W, h, w, pixels, 0);
      const {reg, prob} = await this.run("pnet", pixels, [1, 3, h, w]);
      const [, , oh, ow] = prob.dims, plane = oh * ow, s = f32(scale), level = [];
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          const score = prob.data[plane + y * ow + x];
          if (score < thresholds[0]) continue;
          level.push([Math.floor(f32(f32(2 * x + 1) / s)), Math.floor(f32(f32(2 * y + 1) / s)),
                      Math.floor(f32(f32(2 * x + 12) / s)), Math.floor(f32(f32(2 * y + 12) / s)), score,
                      ...[0, 1, 2, 3].map((c) => reg.data[c * plane + y * ow + x])]);
        }
      }
      boxes.push(...nms(level, 0.5));
    }
    boxes = nms(boxes, 0.7).map((b) => {
      const w = f32(b[2] - b[0]), h = f32(b[3] - b[1]);
      return rerec([f32(b[0] + f32(b[5] * w)), f32(b[1] + f32(b[6] * h)), f32(b[2] + f32(b[7] * w)),
                    f32(b[3] + f32(b[8] * h)), b[4]]);
    });
    // Stage 2: R-Net on every candidate at once.
    boxes = await this.refine(areas, boxes, W, H, 24, "rnet", thresholds[1]);
    boxes = nms(boxes, 0.7).map((b) => rerec(bbreg(b, b.reg)).slice(0, 5));
    // Stage 3: O-Net, landmarks, calibration, then NMS by the smaller box.
    boxes = await this.refine(areas, boxes, W, H, 48, "onet", thresholds[2]);
    boxes = boxes.map((b) => {
      const w = f32(f32(b[2] - b[0]) + 1), h = f32(f32(b[3] - b[1]) + 1);
      const points = [0, 1, 2, 3, 4].map((k) => [f32(f32(f32(w * b.marks[k]) + b[0]) - 1),
                                                 f32(f32(f32(h * b.marks[k + 5]) + b[1]) - 1)]);
      const out = bbreg(b, b.reg).slice(0, 5);
      out.points = points;
      return out;
    });
    return nms(boxes, 0.7, "min");
  }

  /** facenet-pytorch's pad + crop of each box onto side x side, the network on all of them, and the boxes
   * it scores over ``threshold`` as [x1, y1, x2, y2, score] with .reg (and .marks from O-Net). */
  async refine(areas, boxes, W, H, side, name, threshold) {
    const inside = [];
    for (const b of boxes) {
      const x = Math.max(Math.trunc(b[0]), 1) - 1, y = Math.max(Math.trunc(b[1]), 1) - 1;
      const ex = Math.min(Math.trunc(b[2]), W), ey = Math.min(Math.trunc(b[3]), H);
      if (ex > x && ey > y && x < W && y < H) inside.push([b, y, ey, x, ex]);
    }
    if (!inside.length) return [];
    const size = 3 * side * side, pixels = new Float32Array(inside.length * size);
    inside.forEach(([, y, ey, x, ex], n) => areas.resample(y, ey, x, ex, side, side, pixels, n * size));
    const out = await this.run(name, pixels, [inside.length, 3, side, side]);
    const kept = [];
    inside.forEach(([b], n) => {
      const score = out.prob.data[2 * n + 1];
      if (!(score > threshold)) return;
      const box = [b[0], b[1], b[2], b[3], score];
      box.reg = Array.from(out.reg.data.subarray(4 * n, 4 * n + 4));
      if (out.points) box.marks = Array.from(out.points.data.subarray(10 * n, 10 * n + 10));
      kept.push(box);
    });
    return kept;
  }
}
