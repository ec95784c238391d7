"""The Python pre-stage of enhancement: optical-flow rate conversion, de-stutter and the learned
upscaler, streamed frame by frame into lossless intermediates that planning treats as sources."""
