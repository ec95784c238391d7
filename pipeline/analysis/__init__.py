"""Facts measured from media: sound and picture onsets, scene cuts, reframing subjects, audio/video
sync, loudness. Results are plain data that planning consumes."""
