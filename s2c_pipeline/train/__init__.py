"""Training: data pack, loop, Ray Train entry, export."""
