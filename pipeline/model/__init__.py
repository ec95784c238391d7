"""Pure data: the job file, presets, overlay and caption schemas, exact time (:mod:`.timebase`).

Nothing here opens media or runs ffmpeg; everything else may import it."""
