// adkvoice browser client: text chat and voice over /ws/{session_id}, adkvoice.v1 extension
// (binary PCM, typed JSON events), falling back to the seeds' JSON protocol if the server
// does not select the extension. No build step, no dependencies.
//
// Page parameters: ?session=ID continues a conversation; ?token=T (or #token=T) for a
// server that requires one; ?protocol=seeds speaks only the seeds' protocol (base64 JSON),
// as the ADK sample's own page does.
//
// Camera and Share screen show the model a picture (adkvoice.v1 only: the seeds' protocol
// has no image message): about one JPEG frame a second, only when it changed (vision.js).
//
// `window.adkvoice.stats` is a read-only snapshot of counters (connections, frames, audio
// bytes each way, samples played) for debugging and for the browser tests.

import { arrayBufferToBase64, base64ToArrayBuffer, startPlayer, startRecorder } from "./audio.js";
import { startVideo } from "./vision.js";

const SUBPROTOCOL = "adkvoice.v1";
// When the model speaks a background call's result (tool_result.scheduling).
const SCHEDULING_WORDS = {
  WHEN_IDLE: "spoken when the agent is free",
  INTERRUPT: "spoken at once",
  SILENT: "not spoken: the agent keeps it in mind",
};
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 15000;
// Close codes after which reconnecting cannot help: the user must change something.
const FINAL_CLOSE_CODES = new Set([1008]);
const VIDEO_TITLES = { camera: "Show the agent your camera", screen: "Show the agent your screen" };

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("messageForm"),
  input: $("message"),
  send: $("sendButton"),
  audio: $("startAudioButton"),
  fresh: $("newSessionButton"),
  camera: $("cameraButton"),
  screen: $("screenButton"),
  video: $("videoLabel"),
  preview: $("preview"),
  messages: $("messages"),
  status: $("status"),
  mode: $("mode"),
  usage: $("usage"),
  session: $("sessionLabel"),
};

const state = {
  ws: null,
  extended: false,
  audio: false,
  sessionId: null,
  token: null,
  attempt: 0,
  timer: null,
  player: null,
  recorder: null,
  video: null, // the camera or screen being shown: { source, stats, resend(), stop() }
  bubbles: { agentText: null, agentSpeech: null, userSpeech: null },
  tools: new Map(), // call id → its bubble, so a result spoken later updates its own call
  working: null, // the "still working" bubble while a model says more of its answer follows
  seedsOnly: false,
  switching: false, // a reconnect we started on purpose (mode switch): no "continuing" notice
  // A team of agents (an "agents" message with several, or a handoff): agent bubbles name
  // their agent. `author` is the agent whose bubbles are open.
  namesShown: false,
  author: "",
};

const stats = {
  connects: 0, // sockets opened
  closes: 0, // sockets closed (any reason)
  lastClose: null, // {code, reason} of the last close
  protocol: "", // "adkvoice.v1" or "seeds" for the open socket
  framesIn: 0,
  audioChunksIn: 0, // agent audio chunks handed to the player
  audioBytesIn: 0,
  audioChunksOut: 0, // microphone chunks sent
  audioBytesOut: 0,
  samplesPlayed: 0, // agent samples the player worklet has output (as it last reported)
  underruns: 0,
  video: "", // "camera" or "screen" while one is shown
  imagesOut: 0, // frames sent to the model
  imageBytesOut: 0,
  imagesSkipped: 0, // frames not sent: the same picture as the last one sent
};

window.adkvoice = Object.freeze({
  get stats() {
    return { ...stats, lastClose: stats.lastClose && { ...stats.lastClose } };
  },
});

// ------------------------------------------------------------------------- identity

function randomId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes); // works outside secure contexts, unlike randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function initSession() {
  const params = new URLSearchParams(location.search);
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token") || hash.get("token");
  if (token) {
    sessionStorage.setItem("adkvoice.token", token);
    params.delete("token");
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
  }
  state.token = sessionStorage.getItem("adkvoice.token");
  state.seedsOnly = params.get("protocol") === "seeds";
  state.sessionId =
    params.get("session") || sessionStorage.getItem("adkvoice.session") || randomId();
  sessionStorage.setItem("adkvoice.session", state.sessionId);
  ui.session.textContent = "session " + state.sessionId;
}

function socketUrl() {
  const url = new URL("ws/" + encodeURIComponent(state.sessionId), location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({ is_audio: String(state.audio) });
  if (state.token) query.set("token", state.token);
  url.search = query.toString();
  url.hash = "";
  return url.toString();
}

// ------------------------------------------------------------------------------ view

function setStatus(text, level = "") {
  ui.status.textContent = text;
  ui.status.className = "status " + level;
}

function addBubble(kind, text = "", extra = []) {
  const el = document.createElement("div");
  el.className = ["msg", kind, ...extra].join(" ");
  el.textContent = text;
  ui.messages.appendChild(el);
  ui.messages.scrollTop = ui.messages.scrollHeight;
  return el;
}

function nameAgent(el, kind) {
  // A team's agent bubble starts with the agent's name.
  if (kind !== "agent" || !state.namesShown || !state.author) return;
  const name = document.createElement("span");
  name.className = "author";
  name.textContent = state.author;
  el.prepend(name);
}

function setText(el, text) {
  const name = el.querySelector(".author");
  el.textContent = text;
  if (name) el.prepend(name);
}

function appendTo(key, kind, text, extra) {
  let el = state.bubbles[key];
  if (!el) {
    el = state.bubbles[key] = addBubble(kind, "", [...extra, "partial"]);
    nameAgent(el, kind);
  }
  el.append(text);
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function finishBubble(key, wholeText) {
  const el = state.bubbles[key];
  if (el) {
    if (wholeText) setText(el, wholeText);
    el.classList.remove("partial");
  } else if (wholeText) {
    const kind = key.startsWith("user") ? "user" : "agent";
    const extra = key.endsWith("Speech") ? ["spoken"] : [];
    nameAgent(addBubble(kind, wholeText, extra), kind);
  }
  state.bubbles[key] = null;
}

function speakingAgent(message) {
  // The agent an output comes from: another agent than before ends the open bubbles.
  const author = typeof message.author === "string" ? message.author : "";
  if (!author || author === state.author) return;
  finishBubble("agentText", null);
  finishBubble("agentSpeech", null);
  state.author = author;
}

function endTurn(interrupted) {
  for (const key of Object.keys(state.bubbles)) {
    if (interrupted && key.startsWith("agent") && state.bubbles[key]) {
      state.bubbles[key].classList.add("interrupted");
    }
    finishBubble(key, null);
  }
}

function notice(text, level = "info") {
  addBubble("notice", text, level === "error" ? ["error"] : []);
}

// ---------------------------------------------------------------------- connection

function connect() {
  clearTimeout(state.timer);
  const ws = new WebSocket(socketUrl(), state.seedsOnly ? [] : [SUBPROTOCOL]);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  setStatus(state.attempt ? "reconnecting…" : "connecting…");

  ws.onopen = () => {
    if (ws !== state.ws) return;
    state.extended = ws.protocol === SUBPROTOCOL;
    stats.connects += 1;
    stats.protocol = state.extended ? SUBPROTOCOL : "seeds";
    ui.send.disabled = false;
    updateVideoButtons();
    if (!state.extended && state.video) {
      stopVideo();
      notice("the server speaks the seeds' protocol, which carries no images", "error");
    }
    setStatus("connected" + (state.audio ? " · audio" : ""), "ok");
    if (!state.extended) {
      // A seeds server sends no hello.
      state.attempt = 0;
      state.switching = false;
    }
  };
  ws.onmessage = (event) => {
    if (ws !== state.ws) return;
    stats.framesIn += 1;
    if (event.data instanceof ArrayBuffer) {
      playAudio(event.data);
    } else {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn("ignored a frame that is not JSON");
        return;
      }
      handle(message);
    }
  };
  ws.onclose = (event) => {
    stats.closes += 1;
    stats.lastClose = { code: event.code, reason: event.reason };
    if (ws !== state.ws) return; // an old socket we closed on purpose
    stats.protocol = "";
    state.switching = false;
    ui.send.disabled = true;
    updateVideoButtons();
    endTurn(false);
    const reason = event.reason ? ": " + event.reason : "";
    if (FINAL_CLOSE_CODES.has(event.code) || (event.code === 1000 && /replaced/.test(event.reason))) {
      setStatus(`closed (${event.code}${reason})`, "error");
      return;
    }
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** state.attempt);
    const jittered = Math.round(delay * (0.5 + Math.random() / 2));
    state.attempt += 1;
    setStatus(`disconnected (${event.code}${reason}); reconnecting in ${(jittered / 1000).toFixed(1)} s`, "warning");
    state.timer = setTimeout(connect, jittered);
  };
}

function reconnectNow() {
  const old = state.ws;
  state.ws = null;
  if (old && old.readyState <= WebSocket.OPEN) old.close(1000, "switching mode");
  state.attempt = 0;
  state.switching = true;
  connect();
}

function send(frame) {
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(frame);
    return true;
  }
  return false;
}

// ---------------------------------------------------------------- server messages

function playAudio(buffer) {
  if (!state.player) return;
  stats.audioChunksIn += 1;
  stats.audioBytesIn += buffer.byteLength;
  state.player.push(buffer);
}

function playerState(message) {
  if (message && typeof message.played === "number") stats.samplesPlayed = message.played;
  if (message && typeof message.underruns === "number") stats.underruns = message.underruns;
}

function setWorking(on) {
  // A model that answers in several turns (Gemini 3.8) said more of this answer follows.
  if (on && !state.working) {
    state.working = addBubble("notice", "still working…", ["working"]);
  } else if (!on && state.working) {
    state.working.remove();
    state.working = null;
  }
}

function seconds(value) {
  return typeof value === "number" ? ` · ${value < 1 ? Math.round(value * 1000) + " ms" : value.toFixed(2) + " s"}` : "";
}

function handle(message) {
  if (message.type === "agent_text" || message.type === "transcript" || message.mime_type) {
    if (message.type !== "transcript" || message.speaker === "agent") {
      setWorking(false);
      speakingAgent(message);
    }
  }
  // The seeds' frames (a server without the extension).
  if (message.mime_type === "audio/pcm") return playAudio(base64ToArrayBuffer(message.data));
  if (message.mime_type === "text/plain") {
    return state.audio
      ? appendTo("agentSpeech", "agent", message.data, ["spoken"])
      : appendTo("agentText", "agent", message.data, []);
  }
  if (!message.type && ("turn_complete" in message || "interrupted" in message)) {
    if (message.interrupted === true) interrupted();
    if (message.turn_complete === true) turnComplete();
    return;
  }
  switch (message.type) {
    case "hello":
      state.attempt = 0;
      if (message.resumed && !state.switching) notice("continuing the conversation");
      state.switching = false;
      // A new connection: its model may not have the picture yet.
      if (state.video) state.video.resend();
      break;
    case "agent_text":
      if (message.partial) appendTo("agentText", "agent", message.text, []);
      else finishBubble("agentText", message.text);
      break;
    case "transcript": {
      const key = message.speaker === "user" ? "userSpeech" : "agentSpeech";
      const kind = message.speaker === "user" ? "user" : "agent";
      if (message.finished) finishBubble(key, message.text);
      else if (message.text) appendTo(key, kind, message.text, ["spoken"]);
      break;
    }
    case "agents":
      state.namesShown = Array.isArray(message.names) && message.names.length > 1;
      break;
    case "handoff":
      // One agent handed the conversation to another: a line says so, and the name shows.
      state.namesShown = true;
      speakingAgent({ author: message.to });
      addBubble("notice", `→ ${message.to}` + (message.from ? ` · handed over by ${message.from}` : ""), ["handoff"]);
      break;
    case "tool_call": {
      if (message.name === "transfer_to_agent") break; // the handoff line says it
      const background = message.background === true;
      const text = `⚙ ${message.name}(${JSON.stringify(message.args)})` + (background ? " · running in background" : "");
      state.tools.set(message.id, addBubble("tool", text, background ? ["background"] : []));
      break;
    }
    case "tool_result": {
      if (message.name === "transfer_to_agent") break;
      const el = state.tools.get(message.id) || addBubble("tool", `⚙ ${message.name}`);
      el.textContent = el.textContent.replace(" · running in background", "");
      el.textContent += " → " + JSON.stringify(message.response) + seconds(message.duration_s);
      if (message.scheduling) el.textContent += " · " + (SCHEDULING_WORDS[message.scheduling] || message.scheduling);
      el.classList.add("done");
      state.tools.delete(message.id);
      break;
    }
    case "turn_complete":
      turnComplete();
      setWorking(message.interaction_status === "in_progress");
      break;
    case "interrupted":
      interrupted();
      break;
    case "usage":
      ui.usage.textContent = `tokens: ${message.total_tokens ?? "?"}`;
      break;
    case "notice":
      // Warnings (the server is going away) take the status line; information (what the
      // model does, e.g. answers in speech only) goes with the conversation.
      if (message.level === "warning") setStatus(message.message, "warning");
      else notice(message.message);
      break;
    case "error":
      notice(message.message, "error");
      break;
    default:
      console.debug("ignored server message", message.type);
  }
}

function turnComplete() {
  endTurn(false);
  if (state.player) state.player.end();
}

function interrupted() {
  // Stale agent audio must stop the moment the user cuts in.
  if (state.player) state.player.flush();
  endTurn(true);
  setWorking(false);
}

// --------------------------------------------------------------------- user input

function sendText(text) {
  const frame = state.extended
    ? JSON.stringify({ type: "text", text })
    : JSON.stringify({ mime_type: "text/plain", data: text });
  if (!send(frame)) {
    notice("not connected: the message was not sent", "error");
    return;
  }
  // A typed message cuts the agent off; whatever it was still saying is stale.
  if (state.player) state.player.flush();
  endTurn(false);
  addBubble("user", text);
}

function sendAudio(buffer) {
  if (!state.audio) return;
  const size = buffer.byteLength;
  const sent = state.extended
    ? send(buffer)
    : send(JSON.stringify({ mime_type: "audio/pcm", data: arrayBufferToBase64(buffer) }));
  if (sent) {
    stats.audioChunksOut += 1;
    stats.audioBytesOut += size;
  }
}

async function startAudio() {
  ui.audio.disabled = true;
  try {
    // Created inside the click handler: browsers only start audio after a user gesture.
    state.player = await startPlayer(playerState);
    state.recorder = await startRecorder(sendAudio);
    state.audio = true;
    ui.audio.textContent = "Stop Audio";
    ui.audio.classList.add("active");
    ui.mode.textContent = "audio";
    reconnectNow();
  } catch (error) {
    await stopAudio();
    notice("could not start audio: " + (error && error.message ? error.message : error), "error");
  } finally {
    ui.audio.disabled = false;
  }
}

async function stopAudio() {
  const { player, recorder } = state;
  state.player = state.recorder = null;
  const wasAudio = state.audio;
  state.audio = false;
  ui.audio.textContent = "Start Audio";
  ui.audio.classList.remove("active");
  ui.mode.textContent = "text";
  if (recorder) await recorder.stop();
  if (player) await player.close();
  if (wasAudio) reconnectNow();
}

// ---------------------------------------------------------------- camera and screen

function sendImage(buffer, mimeType) {
  if (!state.extended) return false;
  const frame = JSON.stringify({ type: "image", mime_type: mimeType, data: arrayBufferToBase64(buffer) });
  if (!send(frame)) return false;
  stats.imagesOut += 1;
  stats.imageBytesOut += buffer.byteLength;
  return true;
}

function updateVideoButtons() {
  const connected = state.extended && state.ws && state.ws.readyState === WebSocket.OPEN;
  const seeds = stats.protocol === "seeds";
  for (const [source, button] of [["camera", ui.camera], ["screen", ui.screen]]) {
    const on = state.video && state.video.source === source;
    button.disabled = !connected && !on; // one that is on can always be stopped
    button.title = seeds ? "images need the adkvoice.v1 protocol" : VIDEO_TITLES[source];
    button.classList.toggle("active", Boolean(on));
  }
  ui.camera.textContent = state.video && state.video.source === "camera" ? "Stop Camera" : "Camera";
  ui.screen.textContent = state.video && state.video.source === "screen" ? "Stop Sharing" : "Share screen";
}

function showVideoStats(videoStats) {
  stats.imagesSkipped = videoStats.skipped;
  const sent = videoStats.sent;
  const source = state.video ? state.video.source : "";
  ui.video.textContent = source ? `${source} · ${sent} frame${sent === 1 ? "" : "s"} sent` : "";
}

function stopVideo() {
  const video = state.video;
  state.video = null;
  stats.video = "";
  if (video) video.stop();
  ui.video.textContent = "";
  updateVideoButtons();
}

async function toggleVideo(source) {
  const wasOn = state.video && state.video.source === source;
  stopVideo();
  if (wasOn) return;
  ui.camera.disabled = ui.screen.disabled = true;
  try {
    // Asked inside the click handler: screen sharing needs the user's gesture.
    const video = await startVideo(source, ui.preview, sendImage, (s) => {
      if (state.video === video) showVideoStats(s);
    }, () => {
      if (state.video === video) stopVideo();
    });
    state.video = video;
    stats.video = source;
    showVideoStats(video.stats);
  } catch (error) {
    const what = source === "camera" ? "the camera" : "screen sharing";
    notice(`could not start ${what}: ` + (error && error.message ? error.message : error), "error");
  } finally {
    updateVideoButtons();
  }
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.input.value;
  if (!text.trim()) return;
  ui.input.value = "";
  sendText(text);
});

ui.audio.addEventListener("click", () => (state.audio ? stopAudio() : startAudio()));
ui.camera.addEventListener("click", () => toggleVideo("camera"));
ui.screen.addEventListener("click", () => toggleVideo("screen"));

ui.fresh.addEventListener("click", () => {
  state.sessionId = randomId();
  sessionStorage.setItem("adkvoice.session", state.sessionId);
  ui.session.textContent = "session " + state.sessionId;
  ui.messages.textContent = "";
  reconnectNow();
});

initSession();
connect();
