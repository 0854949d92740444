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


VISION_HARNESS = r"""
const v = await import(process.argv[2]);
const still = new Uint8Array(96 * 54).fill(100);
const typed = still.slice();
typed[7] = 120; // one thumbnail pixel 20 levels off: a typed character
const noisy = still.map((x, i) => x + (i % 3) - 1); // ±1 level everywhere: sensor noise
console.log(JSON.stringify({
  fit: [v.fitSize(1920, 1080), v.fitSize(640, 480), v.fitSize(1080, 1920), v.fitSize(4000, 1)],
  thumb: v.fitSize(768, 432, v.THUMBNAIL_SIDE),
  grey: Array.from(v.grey(new Uint8ClampedArray([255, 0, 0, 9, 0, 255, 0, 9, 255, 255, 255, 9]))),
  first: v.changed(null, still),
  same: v.changed(still, still.slice()),
  noise: v.changed(still, noisy),
  typed: v.changed(still, typed),
  resized: v.changed(still, new Uint8Array(10)),
  pace: [v.FPS, v.QUALITY, v.MAX_SIDE, v.CHANGE_THRESHOLD],
}));
"""


def test_vision_pacing_matches_the_python_pipeline(tmp_path: Path) -> None:
    """The page's camera and screen frames: the 768 px fit, the grey thumbnail and the
    unchanged test of `adkvoice.vision.policy`, at 1 frame a second."""
    from adkvoice.vision import policy

    assert NODE is not None
    harness = tmp_path / "vision-harness.mjs"
    harness.write_text(VISION_HARNESS)
    module = tmp_path / "vision.mjs"
    module.write_text((static_dir() / "vision.js").read_text())
    done = subprocess.run(
        [NODE, str(harness), module.as_uri()], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["fit"] == [
        list(policy.fit_size(w, h)) for w, h in ((1920, 1080), (640, 480), (1080, 1920), (4000, 1))
    ]
    assert got["thumb"] == list(policy.thumbnail_size(768, 432))
    assert got["grey"] == [76, 150, 255]  # OpenCV's weights: 0.299 R + 0.587 G + 0.114 B
    assert got["first"] is True
    assert got["same"] is False
    assert got["noise"] is False
    assert got["typed"] is True
    assert got["resized"] is True
    assert got["pace"] == [
        policy.DEFAULT_FPS,
        policy.DEFAULT_QUALITY / 100,
        policy.MAX_SIDE,
        policy.CHANGE_THRESHOLD,
    ]
