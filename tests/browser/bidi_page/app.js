// A stand-in for ADK bidi-demo's page (static/js/app.js), written from its documented
// behaviour: one socket to /ws/USER/SESSION; typed turns as {"type":"text"}; the
// microphone as binary frames of 16 kHz s16le PCM from a 16 kHz AudioContext's worklet
// (256 bytes each); every message is an ADK Event rendered into chat bubbles. What it saw
// is kept in `window.bidiLog` for the test.

const userId = "demo-user";
const sessionId = "demo-session-" + Math.random().toString(36).substring(7);
const messages = document.getElementById("messages");
const log = { opened: 0, closed: [], events: 0, turnCompletes: 0, audioChunks: 0, sentFrames: 0, frameBytes: [] };
window.bidiLog = log;
let websocket = null;

// The bubbles being written: agent text, the user's and the agent's transcripts.
let textBubble = null;
let inputBubble = null;
let outputBubble = null;
let transcribedTurn = false; // the output transcript delivered this turn's reply

function bubble(text, who, kind) {
  const div = document.createElement("div");
  div.className = `message ${who} ${kind}`;
  div.textContent = text;
  messages.appendChild(div);
  return div;
}

function connect() {
  websocket = new WebSocket(`ws://${location.host}/ws/${userId}/${sessionId}`);
  websocket.onopen = () => {
    log.opened += 1;
    document.getElementById("status").textContent = "Connected";
    document.getElementById("sendButton").disabled = false;
  };
  websocket.onclose = (event) => {
    log.closed.push(`${event.code} ${event.reason}`);
    document.getElementById("sendButton").disabled = true;
    setTimeout(connect, 5000);
  };
  websocket.onmessage = (message) => render(JSON.parse(message.data));
}

function render(event) {
  log.events += 1;
  if (event.turnComplete) {
    log.turnCompletes += 1;
    textBubble = outputBubble = null;
    transcribedTurn = false;
    return;
  }
  if (event.interrupted) {
    for (const b of [textBubble, outputBubble]) if (b) b.classList.add("interrupted");
    textBubble = outputBubble = null;
    transcribedTurn = false;
    return;
  }
  if (event.inputTranscription && event.inputTranscription.text) {
    const t = event.inputTranscription;
    if (!inputBubble) inputBubble = bubble(t.text, "user", "transcription");
    else inputBubble.textContent = t.finished ? t.text : inputBubble.textContent + t.text;
    if (t.finished) inputBubble = null;
  }
  if (event.outputTranscription && event.outputTranscription.text) {
    const t = event.outputTranscription;
    transcribedTurn = true;
    inputBubble = null; // the agent answers: the user's bubble is done
    if (!outputBubble) outputBubble = bubble(t.text, "agent", "transcription");
    else outputBubble.textContent = t.finished ? t.text : outputBubble.textContent + t.text;
    if (t.finished) outputBubble = null;
  }
  const parts = (event.content && event.content.parts) || [];
  for (const part of parts) {
    if (part.inlineData && (part.inlineData.mimeType || "").startsWith("audio/pcm")) {
      log.audioChunks += 1; // the demo plays it through its player worklet
    }
    if (part.text && !part.thought) {
      if (!event.partial && transcribedTurn) continue; // the transcript said it already
      if (!textBubble) textBubble = bubble(part.text, "agent", "text");
      else textBubble.textContent += part.text;
    }
  }
}

document.getElementById("messageForm").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("message");
  const text = input.value.trim();
  if (!text || !websocket || websocket.readyState !== WebSocket.OPEN) return;
  bubble(text, "user", "typed");
  input.value = "";
  websocket.send(JSON.stringify({ type: "text", text }));
};

document.getElementById("startAudioButton").onclick = async () => {
  const context = new AudioContext({ sampleRate: 16000 });
  await context.audioWorklet.addModule(new URL("./pcm-recorder-processor.js", import.meta.url));
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  const node = new AudioWorkletNode(context, "recorder");
  context.createMediaStreamSource(stream).connect(node);
  node.port.onmessage = (event) => {
    const samples = event.data;
    const pcm = new Int16Array(samples.length);
    for (let i = 0; i < samples.length; i++) pcm[i] = samples[i] * 0x7fff;
    if (websocket && websocket.readyState === WebSocket.OPEN) {
      websocket.send(pcm.buffer);
      log.sentFrames += 1;
      if (log.frameBytes.length < 5) log.frameBytes.push(pcm.buffer.byteLength);
    }
  };
};

connect();
