// AudioWorklet: plays 24 kHz s16le mono chunks from a preallocated ring buffer.
//
// Messages: an ArrayBuffer of PCM appends; {command: "flush"} drops everything queued
// (the user cut in); {command: "end"} says the turn is over, so a reply shorter than the
// prebuffer still plays. Output starts once `prebufferMs` are queued, which hides the
// bursty delivery of realtime models; after an underrun it waits for the prebuffer again.
// State changes are posted back as {playing, underruns, played} (played: samples output).
// The context runs at 24 kHz, so samples are copied without resampling.

class PcmPlayerProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.capacity = Math.round(sampleRate * (opts.bufferSeconds || 120));
    this.ring = new Float32Array(this.capacity);
    this.readIndex = 0;
    this.writeIndex = 0;
    this.queued = 0;
    this.prebuffer = Math.round((sampleRate * (opts.prebufferMs || 200)) / 1000);
    this.playing = false;
    this.ending = false;
    this.underruns = 0;
    this.played = 0; // queued samples output so far (reported with every state change)
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(data) {
    if (data instanceof ArrayBuffer) {
      this.push(new Int16Array(data));
      this.ending = false;
    } else if (data && data.command === "flush") {
      this.readIndex = this.writeIndex = this.queued = 0;
      this.setPlaying(false);
      this.ending = false;
    } else if (data && data.command === "end") {
      this.ending = true;
    }
  }

  push(samples) {
    for (let i = 0; i < samples.length; i++) {
      this.ring[this.writeIndex] = samples[i] / 32768;
      this.writeIndex = (this.writeIndex + 1) % this.capacity;
      if (this.queued < this.capacity) {
        this.queued += 1;
      } else {
        this.readIndex = (this.readIndex + 1) % this.capacity; // full: drop the oldest
      }
    }
  }

  setPlaying(playing) {
    if (playing !== this.playing) {
      this.playing = playing;
      this.port.postMessage({ playing, underruns: this.underruns, played: this.played });
    }
  }

  process(_inputs, outputs) {
    const output = outputs[0];
    const channel = output[0];
    if (!this.playing && (this.queued >= this.prebuffer || (this.ending && this.queued > 0))) {
      this.setPlaying(true);
    }
    let written = 0;
    if (this.playing) {
      const count = Math.min(this.queued, channel.length);
      for (let i = 0; i < count; i++) {
        channel[i] = this.ring[this.readIndex];
        this.readIndex = (this.readIndex + 1) % this.capacity;
      }
      this.queued -= count;
      this.played += count;
      written = count;
      if (this.queued === 0) {
        if (count < channel.length && !this.ending) this.underruns += 1;
        this.setPlaying(false);
      }
    }
    channel.fill(0, written);
    for (let c = 1; c < output.length; c++) output[c].set(channel);
    return true;
  }
}

registerProcessor("pcm-player-processor", PcmPlayerProcessor);
