"""The browser client's files parse, and its AudioWorklets do the right thing, under Node
with the Web Audio globals stubbed (the full browser test drives Chromium separately)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from adkvoice.server.app import static_dir

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

HARNESS = r"""
const results = {};
let registered = {};
globalThis.registerProcessor = (name, cls) => { registered[name] = cls; };
globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.posted = [];
    this.port = { postMessage: (m) => this.posted.push(m), onmessage: null };
  }
};

async function load(file, rate) {
  globalThis.sampleRate = rate;
  registered = {};
  await import(file + "?rate=" + rate);
  return Object.values(registered)[0];
}

function feed(node, samples, block = 128) {
  for (let i = 0; i < samples.length; i += block) {
    node.process([[samples.subarray(i, i + block)]], [[new Float32Array(block)]]);
  }
}

const recorder = process.argv[2], player = process.argv[3];

for (const rate of [48000, 44100, 16000]) {
  const Recorder = await load(recorder, rate);
  const node = new Recorder({ processorOptions: { targetRate: 16000, chunkMs: 50 } });
  const input = new Float32Array(rate).fill(0.5); // one second
  feed(node, input);
  const chunks = node.posted.map((b) => Array.from(new Int16Array(b)));
  results["recorder" + rate] = {
    chunks: chunks.length,
    lengths: [...new Set(chunks.map((c) => c.length))],
    min: Math.min(...chunks.flat()),
    max: Math.max(...chunks.flat()),
  };
}

const Player = await load(player, 24000);
const node = new Player({ processorOptions: { prebufferMs: 200 } });
const block = () => {
  const out = [new Float32Array(128)];
  node.process([], [out]);
  return out[0];
};
const pcm = (n, v) => new Int16Array(n).fill(v).buffer;
node.onMessage(pcm(2400, 16384));
results.beforePrebuffer = Math.max(...block());
node.onMessage(pcm(2400, 16384));
results.afterPrebuffer = Math.min(...block());
node.onMessage({ command: "flush" });
results.afterFlush = Math.max(...block());
node.onMessage(pcm(100, -16384));
results.shortReplyWaits = Math.min(...block());
node.onMessage({ command: "end" });
const tail = block();
results.shortReplyPlays = [tail[0], tail[99], tail[100]];
results.states = node.posted;
console.log(JSON.stringify(results));
"""


def test_static_files_parse(tmp_path: Path) -> None:
    assert NODE is not None
    for source in static_dir().glob("*.js"):
        module = tmp_path / (source.stem + ".mjs")
        module.write_text(source.read_text())
        done = subprocess.run([NODE, "--check", str(module)], capture_output=True, text=True)
        assert done.returncode == 0, (source.name, done.stderr)


def test_worklets(tmp_path: Path) -> None:
    assert NODE is not None
    harness = tmp_path / "harness.mjs"
    harness.write_text(HARNESS)
    files = []
    for name in ("pcm-recorder-processor.js", "pcm-player-processor.js"):
        module = tmp_path / name.replace(".js", ".mjs")  # loaded as ES modules, as a worklet is
        module.write_text((static_dir() / name).read_text())
        files.append(module.as_uri())
    done = subprocess.run([NODE, str(harness), *files], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    for rate in (48000, 44100, 16000):
        recorder = results[f"recorder{rate}"]
        # One second in gives one second out at 16 kHz, in 50 ms chunks of 800 samples.
        assert recorder["chunks"] == 20, recorder
        assert recorder["lengths"] == [800]
        assert recorder["min"] == recorder["max"] == int(0.5 * 0x7FFF)  # Int16Array truncates
    assert results["beforePrebuffer"] == 0  # waits for 200 ms before starting
    assert results["afterPrebuffer"] == 0.5
    assert results["afterFlush"] == 0  # interruption drops queued audio at once
    assert results["shortReplyWaits"] == 0
    assert results["shortReplyPlays"] == [-0.5, -0.5, 0]  # the end of a turn plays the tail
    # The first state change: playback started, nothing output yet.
    assert results["states"][0] == {"playing": True, "underruns": 0, "played": 0}
