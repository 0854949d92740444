// AudioWorklet: microphone samples at the context's rate → 16 kHz s16le mono chunks.
//
// Downsampling averages the input samples that fall into each output sample (a box
// filter: cheap, and enough to keep speech from aliasing). Works for any input rate.

class PcmRecorderProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.targetRate = opts.targetRate || 16000;
    this.step = sampleRate / this.targetRate; // input samples per output sample
    this.chunk = Math.round((this.targetRate * (opts.chunkMs || 50)) / 1000);
    this.out = new Int16Array(this.chunk);
    this.filled = 0;
    this.acc = 0;
    this.count = 0;
    this.position = 0; // input samples consumed, relative to the next boundary
    this.boundary = this.step;
  }

  emit(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.out[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    if (this.filled === this.chunk) {
      this.port.postMessage(this.out.buffer, [this.out.buffer]);
      this.out = new Int16Array(this.chunk);
      this.filled = 0;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const frames = input[0].length;
    for (let i = 0; i < frames; i++) {
      let sample = input[0][i];
      if (channels > 1) {
        for (let c = 1; c < channels; c++) sample += input[c][i];
        sample /= channels;
      }
      this.acc += sample;
      this.count += 1;
      this.position += 1;
      if (this.position >= this.boundary) {
        const average = this.acc / this.count;
        this.acc = 0;
        this.count = 0;
        while (this.position >= this.boundary) {
          this.emit(average);
          this.boundary += this.step;
        }
        if (this.position > 1e6) {
          this.position -= 1e6;
          this.boundary -= 1e6;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-recorder-processor", PcmRecorderProcessor);
