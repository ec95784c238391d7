"""The code that opens media files or runs ffmpeg: the one runner (:mod:`.runner`), probing with
PyAV, ISO BMFF box reading, raw-frame pipes, and the synthetic clips of the demo and the tests."""
