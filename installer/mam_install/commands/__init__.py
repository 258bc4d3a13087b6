"""One module per verb, and the one report module that renders their results."""
