"""Media: photo, film and hint files; atomic writes. No network here."""
