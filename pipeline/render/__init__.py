"""Running plans: the render loop, verification against each plan's expected properties, and the
motion graphics written before a render."""
