"""Community boundaries, pure geometry: named roads, four-to text, build, edit, topology."""
