"""One module per kernel concern; everything here runs as root in the runtime or the init."""
