"""Job + media facts + preset -> render plans (ffmpeg argument lists and the properties each output
must have): conform chains, enhance filters, overlays, duration cut-downs, prepared work files."""
