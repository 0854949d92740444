"""What the model can see: camera, screen and image-file sources, and the frame pipeline.

- `headers`: an image's width and height from its JPEG, PNG or WebP header (pure, no
  decoder), so the emulator reports sizes without the vision extra.
- `policy`: pure decisions: the 768 px fit, pacing to `fps`, the unchanged-frame test on
  a grey thumbnail, the `while-speaking|always` gate.
- `codec`: OpenCV behind one loader (scale, thumbnail, JPEG encode; `ConfigError` naming
  the extra when it is not installed).
- `sources`: a camera (a device number, or a video file standing in for one) and image
  files; `screen`: a monitor, a region or a window of the screen (mss).
- `sender`: `FrameSender`, the loop that grabs, skips, encodes off the event loop and
  hands JPEG frames to an `async send(jpeg, mime)` such as `EmbeddedBackend.send_image`.
"""
