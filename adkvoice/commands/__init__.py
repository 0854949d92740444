"""One module per command: each wires the layers below it for one job and returns an exit
code. `adkvoice.app` owns the event loop they run on; `adkvoice.cli` parses their flags."""
