// Microphone capture (16 kHz s16le chunks) and agent playback (24 kHz) with AudioWorklets.

export const INPUT_RATE = 16000;
export const OUTPUT_RATE = 24000;

export async function startPlayer(onState) {
  const context = new AudioContext({ sampleRate: OUTPUT_RATE, latencyHint: "interactive" });
  await context.audioWorklet.addModule(new URL("./pcm-player-processor.js", import.meta.url));
  const node = new AudioWorkletNode(context, "pcm-player-processor", {
    outputChannelCount: [1],
    processorOptions: { prebufferMs: 200 },
  });
  node.port.onmessage = (event) => onState && onState(event.data);
  node.connect(context.destination);
  await context.resume();
  return {
    push(buffer) {
      node.port.postMessage(buffer, [buffer]);
    },
    flush() {
      node.port.postMessage({ command: "flush" });
    },
    end() {
      node.port.postMessage({ command: "end" });
    },
    async close() {
      node.disconnect();
      await context.close();
    },
  };
}

export async function startRecorder(onChunk) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: {
      channelCount: 1,
      // The agent's voice must not come back through the microphone and interrupt it.
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
    },
  });
  // The context runs at the device's rate; the worklet resamples to 16 kHz itself
  // (Firefox refuses to connect a microphone to a context at another rate).
  const context = new AudioContext({ latencyHint: "interactive" });
  await context.audioWorklet.addModule(new URL("./pcm-recorder-processor.js", import.meta.url));
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "pcm-recorder-processor", {
    processorOptions: { targetRate: INPUT_RATE, chunkMs: 50 },
  });
  node.port.onmessage = (event) => onChunk(event.data);
  // A silent path to the destination keeps the graph pulling the worklet in every browser.
  const mute = new GainNode(context, { gain: 0 });
  source.connect(node).connect(mute).connect(context.destination);
  await context.resume();
  return {
    async stop() {
      stream.getTracks().forEach((track) => track.stop());
      source.disconnect();
      node.disconnect();
      await context.close();
    },
  };
}

export function base64ToArrayBuffer(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

export function arrayBufferToBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
