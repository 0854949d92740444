// Posts each render quantum (128 samples at the context's 16 kHz) as it arrives, as the
// demo's recorder worklet does.
class Recorder extends AudioWorkletProcessor {
  process(inputs) {
    if (inputs.length > 0 && inputs[0].length > 0) {
      this.port.postMessage(new Float32Array(inputs[0][0]));
    }
    return true;
  }
}

registerProcessor("recorder", Recorder);
