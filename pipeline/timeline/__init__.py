"""Exact arithmetic on the cut: where each shot, transition and split edit falls, in frames at the
sequence rate and samples at 48 kHz. No I/O."""
