// Camera and screen share: what the model sees, paced as `adkvoice talk --camera/--screen`
// paces it (adkvoice/vision/policy.py). Each frame is drawn to a canvas fitted to 768 px
// and sent as a JPEG (quality 0.8, canvas.toBlob) at 1 frame a second, unless it is the
// same picture as the last frame sent: its 96 px grey thumbnail is compared with that
// frame's, and it counts as changed when any thumbnail pixel differs by more than 8 grey
// levels (a typed character on a screen moves its pixel by about 20, camera noise by 1).
// Every frame costs the model input tokens; an unchanged one would add nothing.
//
// `fitSize` and `changed` are pure, and this module touches no browser global until
// `startVideo` runs, so Node can test them.

export const MAX_SIDE = 768;
export const FPS = 1;
export const QUALITY = 0.8;
export const THUMBNAIL_SIDE = 96;
export const CHANGE_THRESHOLD = 8;
export const JPEG = "image/jpeg";

/** The size that fits `maxSide` on both sides, keeping the aspect ratio; never enlarges. */
export function fitSize(width, height, maxSide = MAX_SIDE) {
  const longest = Math.max(width, height);
  if (longest <= maxSide) return [width, height];
  const scale = maxSide / longest;
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/** Grey levels (0-255) of RGBA pixels, weighted as OpenCV's BGR2GRAY. */
export function grey(rgba) {
  const out = new Uint8Array(rgba.length / 4);
  for (let i = 0, j = 0; j < out.length; i += 4, j += 1) {
    out[j] = Math.round(0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2]);
  }
  return out;
}

/** Whether thumbnail `current` differs from `reference` (none, or another size: yes). */
export function changed(reference, current, threshold = CHANGE_THRESHOLD) {
  if (!reference || reference.length !== current.length) return true;
  for (let i = 0; i < current.length; i += 1) {
    if (Math.abs(current[i] - reference[i]) > threshold) return true;
  }
  return false;
}

async function openStream(source) {
  const media = navigator.mediaDevices;
  if (!media) throw new Error("this page is not a secure context (use https or localhost)");
  if (source === "camera") {
    return media.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
  }
  if (!media.getDisplayMedia) throw new Error("this browser cannot share the screen");
  return media.getDisplayMedia({ video: true, audio: false });
}

// Starts showing `source` ("camera" or "screen") in `preview` (a <video>) and sending its
// frames through `send(arrayBuffer, mime)`, which returns whether the frame went out.
// `onUpdate(stats)` after every frame; `onEnded()` once the track ends (the browser's
// "Stop sharing", an unplugged camera). Returns { source, stats, resend(), stop() }.
export async function startVideo(source, preview, send, onUpdate, onEnded) {
  const stream = await openStream(source);
  const track = stream.getVideoTracks()[0];
  const stats = { sent: 0, skipped: 0, bytes: 0, width: 0, height: 0 };
  const canvas = document.createElement("canvas");
  const thumb = document.createElement("canvas");
  const context = canvas.getContext("2d");
  const thumbContext = thumb.getContext("2d", { willReadFrequently: true });
  const interval = 1000 / FPS;
  let reference = null; // the thumbnail of the last frame sent
  let stopped = false;
  let timer = null;
  let start = 0;
  let index = 0;

  preview.srcObject = stream;
  preview.hidden = false;
  await preview.play();

  function stop() {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    for (const t of stream.getTracks()) t.stop();
    preview.pause();
    preview.srcObject = null;
    preview.hidden = true;
  }

  async function frame() {
    const width = preview.videoWidth;
    const height = preview.videoHeight;
    if (!width || !height) return; // no picture yet
    const [w, h] = fitSize(width, height);
    canvas.width = w;
    canvas.height = h;
    context.drawImage(preview, 0, 0, w, h);
    const [tw, th] = fitSize(w, h, THUMBNAIL_SIDE);
    thumb.width = tw;
    thumb.height = th;
    thumbContext.imageSmoothingQuality = "high"; // averages, as the Python side does
    thumbContext.drawImage(canvas, 0, 0, tw, th);
    const thumbnail = grey(thumbContext.getImageData(0, 0, tw, th).data);
    if (!changed(reference, thumbnail)) {
      stats.skipped += 1;
      return;
    }
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, JPEG, QUALITY));
    if (!blob || stopped) return;
    const buffer = await blob.arrayBuffer();
    if (stopped || !send(buffer, JPEG)) return; // not connected: tried again next time
    reference = thumbnail;
    stats.sent += 1;
    stats.bytes += buffer.byteLength;
    stats.width = w;
    stats.height = h;
  }

  // Frame n is due at start + n / FPS; slots missed while a frame took long are skipped.
  async function tick() {
    if (stopped) return;
    try {
      await frame();
    } catch (error) {
      console.warn("frame not sent:", error);
    }
    if (stopped) return;
    onUpdate(stats);
    const now = performance.now();
    index = Math.max(index + 1, Math.floor((now - start) / interval) + 1);
    timer = setTimeout(tick, start + index * interval - now);
  }

  track.addEventListener("ended", () => {
    stop();
    onEnded();
  });
  start = performance.now();
  timer = setTimeout(tick, 0);
  return {
    source,
    stats,
    // Send the next frame even if unchanged (a new connection's model has not seen it).
    resend() {
      reference = null;
    },
    stop,
  };
}
