"""One job end to end (probe, analyse, plan, render, QC, export), a single still, and the demo."""
