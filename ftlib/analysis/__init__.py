"""Looking inside a network and its training: gradient and activation diagnostics, and plots of
training curves, gradient profiles and strategy comparisons."""
